//! MLS sessions through `mls-rs` (RFC 9420), with state kept out of mls-rs
//! so that kith-core can store it in the same transaction as the messages
//! it belongs to.
//!
//! ```text
//!   kith-core (SQLite tx) ──snapshot bytes──▶ Session::load ──▶ mls-rs Group
//!          ▲                                                       │ encrypt/decrypt
//!          └──────────── Session::snapshot (staged, not yet committed) ◀┘
//! ```
//!
//! mls-rs writes group state through a storage trait; [`StagedStore`]
//! implements it in memory, so nothing is durable until the caller commits
//! the [`GroupSnapshot`] it takes out. A crash between the two loses both or
//! neither.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};

use kith_wire::{DecodeError, Reader, Writer};
use mls_rs::client_builder::{
    BaseConfig, IntoConfigOutput, PaddingMode, WithCryptoProvider, WithGroupStateStorage,
    WithIdentityProvider, WithKeyPackageRepo, WithMlsRules,
};
use mls_rs::group::proposal::Proposal;
use mls_rs::group::{CommitEffect, ExportedTree, GroupContext, ReceivedMessage, Roster, Sender};
use mls_rs::identity::SigningIdentity;
use mls_rs::identity::basic::{BasicCredential, BasicIdentityProvider};
use mls_rs::mls_rs_codec::{MlsDecode, MlsEncode};
use mls_rs::mls_rules::{
    CommitDirection, CommitOptions, CommitSource, EncryptionOptions, ProposalBundle, ProposalSource,
};
use mls_rs::{
    CipherSuite, CipherSuiteProvider, Client, CryptoProvider, Extension, ExtensionList, Group,
    KeyPackageRef, MlsMessage, MlsRules,
};
use mls_rs_core::crypto::{SignaturePublicKey, SignatureSecretKey};
use mls_rs_core::extension::ExtensionType;
use mls_rs_core::group::{EpochRecord, GroupState, GroupStateStorage};
use mls_rs_core::key_package::{KeyPackageData, KeyPackageStorage};
use mls_rs_crypto_rustcrypto::RustCryptoProvider;
use zeroize::Zeroizing;

use crate::CryptoError;

/// MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, the default. The RustCrypto
/// provider offers no post-quantum suite (see docs/performance.md).
pub const DEFAULT_SUITE: CipherSuite = CipherSuite::CURVE25519_AES128;

/// Prior epochs kept for messages that arrive after a commit.
const EPOCHS_KEPT: usize = 3;

/// The GroupContext extension listing a group's admins (group-v1.md §4),
/// from the private-use range.
pub const ADMINS_EXTENSION: u16 = 0xF0A1;
const MAX_ADMINS: u32 = 10_000;

type Config = IntoConfigOutput<
    WithMlsRules<
        KithRules,
        WithKeyPackageRepo<
            StagedStore,
            WithGroupStateStorage<
                StagedStore,
                WithCryptoProvider<
                    RustCryptoProvider,
                    WithIdentityProvider<BasicIdentityProvider, BaseConfig>,
                >,
            >,
        >,
    >,
>;

/// Why a commit was refused by kith's group rules.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(&'static str);

impl mls_rs::error::IntoAnyError for PolicyError {
    fn into_dyn_error(self) -> Result<Box<dyn std::error::Error + Send + Sync>, Self> {
        Ok(Box::new(self))
    }
}

/// kith's MLS rules: handshake messages are encrypted (the relay learns no
/// sender and no proposal), and in a group with an admin list only admins
/// add, remove others or change the group context (group-v1.md §4). A
/// group without the list (PairV1) has no such rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct KithRules;

fn admins_in(context: &GroupContext) -> Option<Vec<Vec<u8>>> {
    let ext = context
        .extensions
        .get(ExtensionType::new(ADMINS_EXTENSION))?;
    // An undecodable list admits nobody: a fail-closed reading.
    Some(decode_admins(&ext.extension_data).unwrap_or_default())
}

/// `opaque admins<0..10000>` of `opaque key<0..256>` (group-v1.md §4).
pub fn encode_admins(admins: &[Vec<u8>]) -> Vec<u8> {
    let mut w = Writer::new();
    w.vec(admins, |w, key| w.opaque(key));
    w.into_bytes()
}

/// The inverse of [`encode_admins`].
pub fn decode_admins(bytes: &[u8]) -> Result<Vec<Vec<u8>>, DecodeError> {
    let mut r = Reader::new(bytes);
    let admins = r.vec(MAX_ADMINS, "admins", |r| {
        r.opaque(256, "admin key").map(<[u8]>::to_vec)
    })?;
    r.finish()?;
    Ok(admins)
}

fn admins_extension(admins: &[Vec<u8>]) -> ExtensionList {
    let mut list = ExtensionList::new();
    list.set(Extension::new(
        ExtensionType::new(ADMINS_EXTENSION),
        encode_admins(admins),
    ));
    list
}

impl MlsRules for KithRules {
    type Error = PolicyError;

    fn filter_proposals(
        &self,
        _direction: CommitDirection,
        source: CommitSource,
        _roster: &Roster<'_>,
        context: &GroupContext,
        proposals: ProposalBundle,
    ) -> Result<ProposalBundle, PolicyError> {
        let committer = match source {
            CommitSource::ExistingMember(m) => m,
            CommitSource::NewMember(_) => return Err(PolicyError("external commits are not used")),
        };
        if !proposals.psk_proposals().is_empty()
            || !proposals.reinit_proposals().is_empty()
            || !proposals.external_init_proposals().is_empty()
            || !proposals.custom_proposals().is_empty()
        {
            return Err(PolicyError("a proposal kind kith does not use"));
        }
        let Some(admins) = admins_in(context) else {
            return Ok(proposals);
        };
        if admins.contains(&committer.signing_identity.signature_key.as_bytes().to_vec()) {
            return Ok(proposals);
        }
        if !proposals.add_proposals().is_empty() {
            return Err(PolicyError("only an admin may add members"));
        }
        if !proposals.group_context_ext_proposals().is_empty() {
            return Err(PolicyError("only an admin may change the admins"));
        }
        // A member may commit another member's own request to leave.
        let leaving =
            |p: &mls_rs::mls_rules::ProposalInfo<mls_rs::group::proposal::RemoveProposal>| {
                matches!(p.source, ProposalSource::ByReference(_))
                    && p.sender == Sender::Member(p.proposal.to_remove())
            };
        if !proposals.remove_proposals().iter().all(leaving) {
            return Err(PolicyError("only an admin may remove members"));
        }
        Ok(proposals)
    }

    fn commit_options(
        &self,
        _: &Roster<'_>,
        context: &GroupContext,
        _: &ProposalBundle,
    ) -> Result<CommitOptions, PolicyError> {
        // A path only where MLS requires one (removes, updates): an add
        // without one stays cheap in a large group (docs/performance.md).
        let options = CommitOptions::new();
        if admins_in(context).is_none() {
            return Ok(options);
        }
        // A group (group-v1.md §6.3): one Welcome per new member, without
        // the ratchet tree, which is published once per commit instead, so
        // that what each joiner gets does not grow with the group.
        Ok(options
            .with_ratchet_tree_extension(false)
            .with_single_welcome_message(false))
    }

    fn encryption_options(
        &self,
        _: &Roster<'_>,
        _: &GroupContext,
    ) -> Result<EncryptionOptions, PolicyError> {
        // kith pads every relay payload itself (padding.rs).
        Ok(EncryptionOptions::new(true, PaddingMode::None))
    }
}

/// A member's signing key in one relationship (its MLS credential key).
/// Each relationship gets its own, so nothing links two relationships.
#[derive(Clone)]
pub struct IdentityKey {
    secret: SignatureSecretKey,
    public: SignaturePublicKey,
}

impl std::fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityKey")
            .field("public", &hex_prefix(self.public.as_bytes()))
            .field("secret", &"[redacted]")
            .finish()
    }
}

fn hex_prefix(bytes: &[u8]) -> String {
    kith_wire::relay::to_hex(bytes.get(..8).unwrap_or(bytes))
}

fn suite() -> Result<impl CipherSuiteProvider, CryptoError> {
    RustCryptoProvider::default()
        .cipher_suite_provider(DEFAULT_SUITE)
        .ok_or(CryptoError::Invalid(
            "cipher suite not supported by the provider",
        ))
}

impl IdentityKey {
    pub fn generate() -> Result<Self, CryptoError> {
        let (secret, public) = suite()?
            .signature_key_generate()
            .map_err(|e| CryptoError::Mls {
                operation: "signature key",
                detail: format!("{e:?}"),
            })?;
        Ok(Self { secret, public })
    }

    /// The public key: what a contact knows this member by.
    pub fn public(&self) -> &[u8] {
        self.public.as_bytes()
    }

    /// An Ed25519 signature of `message` by this key, outside MLS (a link
    /// between two relationships, pair-v1.md §12). `message` must start
    /// with its own context string, so that it can never be an MLS one.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        suite()?
            .sign(&self.secret, message)
            .map_err(|e| CryptoError::Mls {
                operation: "sign",
                detail: format!("{e:?}"),
            })
    }

    /// The same key as an Ed25519 signing key, for requests signed outside
    /// MLS by it (a directory's member key, directory-v1.md §2).
    pub fn ed25519(&self) -> Result<ed25519_dalek::SigningKey, CryptoError> {
        let not_ed25519 = || CryptoError::Invalid("an identity key that is not Ed25519");
        let seed: [u8; 32] = self
            .secret
            .as_bytes()
            .get(..32)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(not_ed25519)?;
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        if key.verifying_key().as_bytes()[..] != *self.public() {
            return Err(not_ed25519());
        }
        Ok(key)
    }

    /// `secret ‖ public` for storage (length-prefixed, zeroized on drop).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new();
        w.opaque(self.secret.as_bytes());
        w.opaque(self.public.as_bytes());
        Zeroizing::new(w.into_bytes())
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let mut r = Reader::new(bytes);
        let secret = SignatureSecretKey::new(r.opaque(256, "identity secret")?.to_vec());
        let public = SignaturePublicKey::new(r.opaque(256, "identity public key")?.to_vec());
        r.finish()?;
        Ok(Self { secret, public })
    }

    fn client(&self, store: StagedStore) -> Client<Config> {
        let credential = BasicCredential::new(self.public.as_bytes().to_vec()).into_credential();
        Client::builder()
            .identity_provider(BasicIdentityProvider)
            .crypto_provider(RustCryptoProvider::default())
            .group_state_storage(store.clone())
            .key_package_repo(store)
            .mls_rules(KithRules)
            .extension_type(ExtensionType::new(ADMINS_EXTENSION))
            .signing_identity(
                SigningIdentity::new(credential, self.public.clone()),
                self.secret.clone(),
                DEFAULT_SUITE,
            )
            .build()
    }
}

/// Checks an Ed25519 signature by the identity key `public` (see
/// [`IdentityKey::sign`]).
pub fn verify_signature(
    public: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), CryptoError> {
    suite()?
        .verify(
            &SignaturePublicKey::new(public.to_vec()),
            signature,
            message,
        )
        .map_err(|_| CryptoError::Invalid("a signature that does not verify"))
}

/// The identity key a key package's holder would join with.
fn key_package_reference(key_package: &[u8]) -> Result<KeyPackageRef, CryptoError> {
    MlsMessage::from_bytes(key_package)
        .map_err(CryptoError::mls("decode key package"))?
        .key_package_reference(&suite()?)
        .map_err(CryptoError::mls("key package reference"))?
        .ok_or(CryptoError::UnexpectedMessage {
            expected: "key package",
        })
}

pub fn key_package_identity(key_package: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let message =
        MlsMessage::from_bytes(key_package).map_err(CryptoError::mls("decode key package"))?;
    let kp = message
        .into_key_package()
        .ok_or(CryptoError::UnexpectedMessage {
            expected: "key package",
        })?;
    Ok(kp.signing_identity().signature_key.as_bytes().to_vec())
}

/// The epoch an MLS group message was sent in (in the clear on the wire),
/// or `None` for anything else.
pub fn message_epoch(message: &[u8]) -> Option<u64> {
    MlsMessage::from_bytes(message).ok()?.epoch()
}

/// Whether an MLS message is an encrypted application message (a
/// PrivateMessage of content type `application`), read from its clear
/// header without processing it: a 1:1 conversation refuses everything
/// else before it can change any state (pair-v1.md §7).
pub fn is_private_application(message: &[u8]) -> bool {
    MlsMessage::from_bytes(message).is_ok_and(|m| {
        matches!(
            m.description(),
            mls_rs::MlsMessageDescription::PrivateProtocolMessage {
                content_type: mls_rs::group::ContentType::Application,
                ..
            }
        )
    })
}

/// A key package's private half, kept until its Welcome arrives.
pub struct PendingKeyPackage {
    id: Vec<u8>,
    data: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for PendingKeyPackage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PendingKeyPackage([redacted])")
    }
}

impl PendingKeyPackage {
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new();
        w.opaque(&self.id);
        w.opaque(&self.data);
        Zeroizing::new(w.into_bytes())
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let mut r = Reader::new(bytes);
        let id = r.opaque(1024, "key package id")?.to_vec();
        let data = Zeroizing::new(r.opaque(65_536, "key package data")?.to_vec());
        r.finish()?;
        Ok(Self { id, data })
    }
}

/// A new key package for `key`: the public message to hand to the peer,
/// and the private half to keep.
pub fn key_package(key: &IdentityKey) -> Result<(Vec<u8>, PendingKeyPackage), CryptoError> {
    let store = StagedStore::default();
    let message = key
        .client(store.clone())
        .generate_key_package_message(Default::default(), Default::default(), None)
        .map_err(CryptoError::mls("key package"))?;
    let bytes = message
        .to_bytes()
        .map_err(CryptoError::mls("key package"))?;
    let mut inner = store.lock();
    let (id, data) = inner
        .key_packages
        .drain()
        .next()
        .ok_or(CryptoError::Invalid("key package was not stored"))?;
    Ok((bytes, PendingKeyPackage { id, data }))
}

/// Everything mls-rs keeps for one group, as bytes to store.
#[derive(Clone, PartialEq, Eq)]
pub struct GroupSnapshot {
    pub group_id: Vec<u8>,
    state: Zeroizing<Vec<u8>>,
    epochs: BTreeMap<u64, Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for GroupSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupSnapshot")
            .field("group_id", &hex_prefix(&self.group_id))
            .field("epochs", &self.epochs.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

const SNAPSHOT_VERSION: u8 = 1;
const MAX_STATE: u32 = 64 << 20;

impl GroupSnapshot {
    /// `u8 version; opaque group_id; opaque state; EpochRecord epochs<u32>`.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new();
        w.u8(SNAPSHOT_VERSION);
        w.opaque(&self.group_id);
        w.opaque(&self.state);
        w.u32(u32::try_from(self.epochs.len()).unwrap_or(u32::MAX));
        for (id, data) in &self.epochs {
            w.u64(*id);
            w.opaque(data);
        }
        Zeroizing::new(w.into_bytes())
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let mut r = Reader::new(bytes);
        let version = r.u8("group snapshot version")?;
        if version != SNAPSHOT_VERSION {
            return Err(DecodeError::UnknownTag {
                what: "group snapshot version",
                tag: version,
            }
            .into());
        }
        let group_id = r.opaque(1024, "group id")?.to_vec();
        let state = Zeroizing::new(r.opaque(MAX_STATE, "group state")?.to_vec());
        let count = r.u32("epoch count")? as usize;
        if count > EPOCHS_KEPT {
            return Err(DecodeError::TooLong {
                what: "epoch records",
                len: count as u64,
                max: EPOCHS_KEPT as u64,
            }
            .into());
        }
        let mut epochs = BTreeMap::new();
        for _ in 0..count {
            let id = r.u64("epoch id")?;
            // Strictly increasing, as written: one encoding per snapshot.
            if epochs.keys().next_back().is_some_and(|last| *last >= id) {
                return Err(DecodeError::Invalid {
                    what: "epoch id",
                    reason: "not increasing",
                }
                .into());
            }
            epochs.insert(
                id,
                Zeroizing::new(r.opaque(MAX_STATE, "epoch record")?.to_vec()),
            );
        }
        r.finish()?;
        Ok(Self {
            group_id,
            state,
            epochs,
        })
    }
}

/// What a processed message turned out to be.
#[derive(Debug)]
#[non_exhaustive]
pub enum Incoming {
    /// Decrypted application data from the member at `sender` (leaf index).
    Application {
        sender: u32,
        plaintext: Zeroizing<Vec<u8>>,
    },
    /// A commit moved the group to a new epoch.
    Commit(CommitSummary),
    /// A proposal, stored until a commit covers it.
    Proposal,
}

/// What a processed commit changed, for the caller's own bookkeeping.
#[derive(Debug, Clone)]
pub struct CommitSummary {
    pub committer: u32,
    /// Whether this member made it (its pending commit came back).
    pub own: bool,
    /// The commit's authenticated data, as the committer signed it.
    pub authenticated_data: Vec<u8>,
    pub added: Vec<MemberInfo>,
    pub removed: Vec<MemberInfo>,
    /// This member was removed: the session can no longer send or read.
    pub removed_self: bool,
}

/// The changes one commit makes. An empty one updates the committer's
/// path (post-compromise security).
#[derive(Debug, Default)]
pub struct Changes<'a> {
    pub add: &'a [&'a [u8]],
    /// Leaf indexes.
    pub remove: &'a [u32],
    /// Replaces the admin list.
    pub admins: Option<&'a [Vec<u8>]>,
    /// Signed by the committer and sent in the clear beside the encrypted
    /// commit; seal anything secret before putting it here.
    pub authenticated_data: Vec<u8>,
}

/// A commit this member built, not yet applied.
#[derive(Debug, Clone)]
pub struct StagedCommit {
    /// The MLSMessage to send on the group's channel.
    pub commit: Vec<u8>,
    /// One Welcome per member it adds, in the order of [`Changes::add`]
    /// (in a 1:1 group, the one Welcome carries the ratchet tree).
    pub welcomes: Vec<Vec<u8>>,
    /// The ratchet tree of the new epoch, for the members it adds, where it
    /// is not in their Welcomes (groups).
    pub tree: Option<Vec<u8>>,
}

fn member_info(m: &mls_rs::group::Member) -> MemberInfo {
    MemberInfo {
        index: m.index,
        identity_key: m.signing_identity.signature_key.as_bytes().to_vec(),
    }
}

/// A member of one MLS group.
pub struct Session {
    group: Group<Config>,
    store: StagedStore,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("group_id", &hex_prefix(self.group.group_id()))
            .field("epoch", &self.group.current_epoch())
            .finish_non_exhaustive()
    }
}

/// A group member as seen from inside the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    pub index: u32,
    pub identity_key: Vec<u8>,
}

impl Session {
    /// Creates a group and adds the holders of `key_packages`; returns the
    /// session and the Welcome to send them (it carries the ratchet tree).
    pub fn create(
        key: &IdentityKey,
        key_packages: &[&[u8]],
    ) -> Result<(Self, Vec<u8>), CryptoError> {
        let store = StagedStore::default();
        let client = key.client(store.clone());
        let mut group = client
            .create_group(Default::default(), Default::default(), None)
            .map_err(CryptoError::mls("create group"))?;
        let mut commit = group.commit_builder();
        for kp in key_packages {
            let kp = MlsMessage::from_bytes(kp).map_err(CryptoError::mls("decode key package"))?;
            commit = commit
                .add_member(kp)
                .map_err(CryptoError::mls("add member"))?;
        }
        let output = commit.build().map_err(CryptoError::mls("commit"))?;
        group
            .apply_pending_commit()
            .map_err(CryptoError::mls("apply commit"))?;
        let welcome = output
            .welcome_messages
            .first()
            .ok_or(CryptoError::Invalid("commit produced no welcome"))?
            .to_bytes()
            .map_err(CryptoError::mls("encode welcome"))?;
        Ok((Self { group, store }, welcome))
    }

    /// Creates a group with this member alone and as its only admin: the
    /// start of a GroupV1 conversation.
    pub fn create_group(key: &IdentityKey) -> Result<Self, CryptoError> {
        let store = StagedStore::default();
        let group = key
            .client(store.clone())
            .create_group(
                admins_extension(&[key.public().to_vec()]),
                Default::default(),
                None,
            )
            .map_err(CryptoError::mls("create group"))?;
        Ok(Self { group, store })
    }

    /// The admins' identity keys, if the group has an admin list.
    pub fn admins(&self) -> Option<Vec<Vec<u8>>> {
        admins_in(self.group.context())
    }

    /// Whether a commit of this member's waits for the channel.
    pub fn has_pending_commit(&self) -> bool {
        self.group.has_pending_commit()
    }

    /// A secret of the current epoch for `label` (RFC 9420 §8.5): every
    /// member of this epoch, and nobody else, can derive it.
    pub fn export(&self, label: &str) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        let secret = self
            .group
            .export_secret(label.as_bytes(), b"", 32)
            .map_err(CryptoError::mls("export secret"))?;
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(
            secret
                .as_bytes()
                .get(..32)
                .ok_or(CryptoError::Invalid("short exported secret"))?,
        );
        Ok(out)
    }

    /// A proposal to remove this member, for another member to commit
    /// (a member cannot commit its own removal).
    pub fn propose_leave(&mut self) -> Result<Vec<u8>, CryptoError> {
        let own = self.own_index();
        self.group
            .propose_remove(own, Vec::new())
            .and_then(|m| m.to_bytes())
            .map_err(CryptoError::mls("propose leave"))
    }

    /// Whether proposals wait for a commit (application messages cannot be
    /// sent until one is made).
    pub fn commit_required(&self) -> bool {
        self.group.commit_required()
    }

    /// Joins the group a Welcome for `pending` invites to (the Welcome
    /// carries the ratchet tree: a 1:1 group).
    pub fn join(
        key: &IdentityKey,
        pending: &PendingKeyPackage,
        welcome: &[u8],
    ) -> Result<Self, CryptoError> {
        Self::join_with(key, pending, welcome, None)
    }

    fn join_with(
        key: &IdentityKey,
        pending: &PendingKeyPackage,
        welcome: &[u8],
        tree: Option<ExportedTree<'static>>,
    ) -> Result<Self, CryptoError> {
        let store = StagedStore::default();
        // Checked here so that damaged stored bytes give this error, not
        // "no key package for this Welcome".
        KeyPackageData::mls_decode(&mut pending.data.as_slice()).map_err(|e| CryptoError::Mls {
            operation: "key package data",
            detail: e.to_string(),
        })?;
        store
            .lock()
            .key_packages
            .insert(pending.id.clone(), pending.data.clone());
        let welcome =
            MlsMessage::from_bytes(welcome).map_err(CryptoError::mls("decode welcome"))?;
        let (group, _) = key
            .client(store.clone())
            .join_group(tree, &welcome, None)
            .map_err(CryptoError::mls("join"))?;
        Ok(Self { group, store })
    }

    /// Joins a group (GroupV1) with the ratchet tree published beside its
    /// Welcome (group-v1.md §6.3).
    pub fn join_group(
        key: &IdentityKey,
        pending: &PendingKeyPackage,
        welcome: &[u8],
        tree: &[u8],
    ) -> Result<Self, CryptoError> {
        let tree = ExportedTree::from_bytes(tree).map_err(CryptoError::mls("decode tree"))?;
        Self::join_with(key, pending, welcome, Some(tree))
    }

    /// Opens a group from its stored snapshot. The snapshot holds the
    /// member's signing secret too (mls-rs keeps it with the group), so it is
    /// as secret as the key itself.
    pub fn load(key: &IdentityKey, snapshot: GroupSnapshot) -> Result<Self, CryptoError> {
        let store = StagedStore::default();
        let group_id = snapshot.group_id.clone();
        store.lock().groups.insert(group_id.clone(), snapshot);
        let group = key
            .client(store.clone())
            .load_group(&group_id)
            .map_err(CryptoError::mls("load group"))?;
        Ok(Self { group, store })
    }

    pub fn group_id(&self) -> &[u8] {
        self.group.group_id()
    }

    pub fn epoch(&self) -> u64 {
        self.group.current_epoch()
    }

    pub fn own_index(&self) -> u32 {
        self.group.current_member_index()
    }

    pub fn members(&self) -> Vec<MemberInfo> {
        self.group
            .roster()
            .members_iter()
            .map(|m| member_info(&m))
            .collect()
    }

    /// The member at leaf `index`, if there is one.
    pub fn member(&self, index: u32) -> Option<MemberInfo> {
        self.group.member_at_index(index).map(|m| member_info(&m))
    }

    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.group
            .encrypt_application_message(plaintext, Vec::new())
            .and_then(|m| m.to_bytes())
            .map_err(CryptoError::mls("encrypt"))
    }

    /// Processes one message from the group's channel. An error leaves the
    /// session usable: nothing is applied from a message that fails.
    pub fn process(&mut self, message: &[u8]) -> Result<Incoming, CryptoError> {
        let message =
            MlsMessage::from_bytes(message).map_err(CryptoError::mls("decode message"))?;
        let own = self.own_index();
        let had_pending = self.group.has_pending_commit();
        match self
            .group
            .process_incoming_message(message)
            .map_err(CryptoError::mls("process message"))?
        {
            ReceivedMessage::ApplicationMessage(m) => Ok(Incoming::Application {
                sender: m.sender_index,
                plaintext: Zeroizing::new(m.data().to_vec()),
            }),
            ReceivedMessage::Commit(c) => {
                // Who changed is read from the applied proposals (removed
                // members from the prior epoch's tree: a removed member's own
                // roster is not updated), so an application message never
                // pays for a roster walk.
                let (new_epoch, removed_self) = match &c.effect {
                    CommitEffect::NewEpoch(e) => (Some(e), false),
                    CommitEffect::Removed { new_epoch, .. } => (Some(new_epoch), true),
                    CommitEffect::ReInit(_) => (None, false),
                };
                let mut added_keys = Vec::new();
                let mut removed = Vec::new();
                for p in new_epoch.iter().flat_map(|e| &e.applied_proposals) {
                    match &p.proposal {
                        Proposal::Add(a) => {
                            added_keys.push(a.signing_identity().signature_key.as_bytes().to_vec())
                        }
                        Proposal::Remove(r) => removed.extend(
                            new_epoch
                                .and_then(|e| e.prior_state.member_at_index(r.to_remove()))
                                .map(|m| member_info(&m)),
                        ),
                        _ => {}
                    }
                }
                let added = if added_keys.is_empty() {
                    Vec::new()
                } else {
                    self.members()
                        .into_iter()
                        .filter(|m| added_keys.contains(&m.identity_key))
                        .collect()
                };
                Ok(Incoming::Commit(CommitSummary {
                    committer: c.committer,
                    own: had_pending && c.committer == own,
                    authenticated_data: c.authenticated_data,
                    added,
                    removed,
                    removed_self,
                }))
            }
            ReceivedMessage::Proposal(_) => Ok(Incoming::Proposal),
            _ => Err(CryptoError::UnexpectedMessage {
                expected: "group message",
            }),
        }
    }

    /// Builds a commit that adds the holders of `add` and removes the
    /// members at leaf indexes `remove` (an empty commit updates this
    /// member's path: post-compromise security). The commit is kept pending:
    /// it takes effect when it comes back from the channel (processing one's
    /// own commit applies it) or with [`Session::apply_pending`]; if another
    /// commit for this epoch comes first, processing that one drops it.
    pub fn commit(&mut self, add: &[&[u8]], remove: &[u32]) -> Result<StagedCommit, CryptoError> {
        self.commit_with(Changes {
            add,
            remove,
            ..Changes::default()
        })
    }

    /// [`Session::commit`] with every kind of change.
    pub fn commit_with(&mut self, changes: Changes<'_>) -> Result<StagedCommit, CryptoError> {
        let Changes {
            add,
            remove,
            admins,
            authenticated_data,
        } = changes;
        let mut builder = self
            .group
            .commit_builder()
            .authenticated_data(authenticated_data);
        if let Some(admins) = admins {
            builder = builder
                .set_group_context_ext(admins_extension(admins))
                .map_err(CryptoError::mls("set admins"))?;
        }
        for kp in add {
            let kp = MlsMessage::from_bytes(kp).map_err(CryptoError::mls("decode key package"))?;
            builder = builder
                .add_member(kp)
                .map_err(CryptoError::mls("add member"))?;
        }
        for index in remove {
            builder = builder
                .remove_member(*index)
                .map_err(CryptoError::mls("remove member"))?;
        }
        let references = add
            .iter()
            .map(|kp| key_package_reference(kp))
            .collect::<Result<Vec<_>, _>>()?;
        let output = builder.build().map_err(CryptoError::mls("commit"))?;
        let mut welcomes = vec![Vec::new(); add.len()];
        for welcome in &output.welcome_messages {
            let bytes = welcome
                .to_bytes()
                .map_err(CryptoError::mls("encode welcome"))?;
            // A Welcome for several members (a 1:1 group's) goes to each.
            for reference in welcome.welcome_key_package_references() {
                if let Some(i) = references.iter().position(|r| r == reference)
                    && let Some(slot) = welcomes.get_mut(i)
                {
                    slot.clone_from(&bytes);
                }
            }
        }
        if welcomes.iter().any(Vec::is_empty) {
            return Err(CryptoError::Invalid("a member added without a Welcome"));
        }
        let tree = match &output.ratchet_tree {
            Some(tree) => Some(tree.to_bytes().map_err(CryptoError::mls("encode tree"))?),
            None => None,
        };
        Ok(StagedCommit {
            commit: output
                .commit_message
                .to_bytes()
                .map_err(CryptoError::mls("encode commit"))?,
            welcomes,
            tree,
        })
    }

    /// Applies this member's pending commit without waiting for the channel.
    pub fn apply_pending(&mut self) -> Result<(), CryptoError> {
        self.group
            .apply_pending_commit()
            .map(drop)
            .map_err(CryptoError::mls("apply commit"))
    }

    /// Drops this member's pending commit.
    pub fn discard_pending(&mut self) {
        self.group.clear_pending_commit();
    }

    /// Stages the current state for storage. Call after every operation and
    /// commit the snapshot with whatever the operation produced.
    pub fn snapshot(&mut self) -> Result<GroupSnapshot, CryptoError> {
        self.group
            .write_to_storage()
            .map_err(CryptoError::mls("write state"))?;
        self.store
            .lock()
            .groups
            .get(self.group.group_id())
            .cloned()
            .ok_or(CryptoError::Invalid("group state was not written"))
    }
}

/// In-memory storage for mls-rs whose contents the caller takes out and
/// persists itself.
#[derive(Clone, Default)]
struct StagedStore(Arc<Mutex<StoreInner>>);

#[derive(Default)]
struct StoreInner {
    groups: HashMap<Vec<u8>, GroupSnapshot>,
    key_packages: HashMap<Vec<u8>, Zeroizing<Vec<u8>>>,
}

impl StagedStore {
    fn lock(&self) -> MutexGuard<'_, StoreInner> {
        // A panic while holding this lock cannot leave half-written state
        // that matters: every write replaces whole values.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl GroupStateStorage for StagedStore {
    type Error = Infallible;

    fn state(&self, group_id: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>, Infallible> {
        Ok(self.lock().groups.get(group_id).map(|g| g.state.clone()))
    }

    fn epoch(
        &self,
        group_id: &[u8],
        epoch_id: u64,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, Infallible> {
        Ok(self
            .lock()
            .groups
            .get(group_id)
            .and_then(|g| g.epochs.get(&epoch_id).cloned()))
    }

    fn write(
        &mut self,
        state: GroupState,
        inserts: Vec<EpochRecord>,
        updates: Vec<EpochRecord>,
    ) -> Result<(), Infallible> {
        let mut inner = self.lock();
        let group = inner
            .groups
            .entry(state.id.clone())
            .or_insert_with(|| GroupSnapshot {
                group_id: state.id.clone(),
                state: Zeroizing::new(Vec::new()),
                epochs: BTreeMap::new(),
            });
        group.state = state.data;
        for record in inserts.into_iter().chain(updates) {
            group.epochs.insert(record.id, record.data);
        }
        while group.epochs.len() > EPOCHS_KEPT {
            group.epochs.pop_first();
        }
        Ok(())
    }

    fn max_epoch_id(&self, group_id: &[u8]) -> Result<Option<u64>, Infallible> {
        Ok(self
            .lock()
            .groups
            .get(group_id)
            .and_then(|g| g.epochs.keys().next_back().copied()))
    }
}

impl KeyPackageStorage for StagedStore {
    type Error = Infallible;

    fn delete(&mut self, id: &[u8]) -> Result<(), Infallible> {
        self.lock().key_packages.remove(id);
        Ok(())
    }

    fn insert(&mut self, id: Vec<u8>, pkg: KeyPackageData) -> Result<(), Infallible> {
        // Encoding a value mls-rs just built cannot fail; if it did, the key
        // package would simply be missing and joining would fail cleanly.
        if let Ok(bytes) = pkg.mls_encode_to_vec() {
            self.lock().key_packages.insert(id, Zeroizing::new(bytes));
        }
        Ok(())
    }

    fn get(&self, id: &[u8]) -> Result<Option<KeyPackageData>, Infallible> {
        Ok(self
            .lock()
            .key_packages
            .get(id)
            .and_then(|bytes| KeyPackageData::mls_decode(&mut bytes.as_slice()).ok()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Session, Session) {
        let alex = IdentityKey::generate().unwrap();
        let blair = IdentityKey::generate().unwrap();
        let (kp, pending) = key_package(&alex).unwrap();
        let (blair_session, welcome) = Session::create(&blair, &[&kp]).unwrap();
        let pending = PendingKeyPackage::from_bytes(&pending.to_bytes()).unwrap();
        let alex_session = Session::join(&alex, &pending, &welcome).unwrap();
        (alex_session, blair_session)
    }

    #[test]
    fn an_identity_key_signs_outside_mls_as_the_same_ed25519_key() {
        use ed25519_dalek::Signer;
        let id = IdentityKey::generate().unwrap();
        let key = id.ed25519().unwrap();
        assert_eq!(key.verifying_key().as_bytes()[..], *id.public());
        let message = b"kith test v1\0hello";
        let by_dalek = key.sign(message).to_bytes();
        verify_signature(id.public(), message, &by_dalek).unwrap();
        assert_eq!(id.sign(message).unwrap(), by_dalek.to_vec());
    }

    #[test]
    fn two_members_talk_and_survive_a_reload() {
        let (mut alex, mut blair) = pair();
        assert_eq!(alex.group_id(), blair.group_id());
        assert_eq!(alex.members(), blair.members());
        let ct = blair.encrypt(b"hello alex").unwrap();
        let Incoming::Application { plaintext, sender } = alex.process(&ct).unwrap() else {
            panic!("expected application data")
        };
        assert_eq!(plaintext.as_slice(), b"hello alex");
        assert_eq!(sender, blair.own_index());

        // Reload both from their snapshots, as after a restart, and go on.
        let key = IdentityKey::generate().unwrap();
        let snapshot = GroupSnapshot::from_bytes(&alex.snapshot().unwrap().to_bytes()).unwrap();
        let mut alex = Session::load(&key, snapshot).unwrap();
        let mut blair = Session::load(&key, blair.snapshot().unwrap()).unwrap();
        let ct = alex.encrypt(b"hello blair").unwrap();
        let Incoming::Application { plaintext, .. } = blair.process(&ct).unwrap() else {
            panic!("expected application data")
        };
        assert_eq!(plaintext.as_slice(), b"hello blair");
    }

    #[test]
    fn replayed_and_altered_messages_are_refused() {
        let (mut alex, mut blair) = pair();
        let ct = blair.encrypt(b"once").unwrap();
        alex.process(&ct).unwrap();
        assert!(
            alex.process(&ct).is_err(),
            "a replay must not decrypt twice"
        );
        let mut altered = blair.encrypt(b"twice").unwrap();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        assert!(alex.process(&altered).is_err());
        // The session is still usable after refusing them.
        let ct = blair.encrypt(b"after").unwrap();
        assert!(matches!(
            alex.process(&ct).unwrap(),
            Incoming::Application { .. }
        ));
    }

    #[test]
    fn the_first_commit_of_an_epoch_wins_and_removal_locks_out() {
        let (mut alex, mut blair) = pair();
        let charlie = IdentityKey::generate().unwrap();
        let (kp, pending) = key_package(&charlie).unwrap();
        // Both commit in the same epoch; the channel orders Blair's first.
        let from_alex = alex.commit(&[], &[]).unwrap();
        let from_blair = blair.commit(&[&kp], &[]).unwrap();
        assert!(matches!(
            alex.process(&from_blair.commit).unwrap(),
            Incoming::Commit(_)
        ));
        assert!(matches!(
            blair.process(&from_blair.commit).unwrap(),
            Incoming::Commit(_)
        ));
        assert!(
            alex.process(&from_alex.commit).is_err(),
            "the losing commit is stale"
        );
        assert!(blair.process(&from_alex.commit).is_err());
        assert_eq!(alex.epoch(), blair.epoch());
        let mut charlie = Session::join(&charlie, &pending, &from_blair.welcomes[0]).unwrap();
        assert_eq!(charlie.members().len(), 3);

        // Removing Charlie: he cannot read what follows.
        let index = charlie.own_index();
        let removal = alex.commit(&[], &[index]).unwrap();
        alex.process(&removal.commit).unwrap();
        blair.process(&removal.commit).unwrap();
        charlie.process(&removal.commit).unwrap();
        let after = blair.encrypt(b"after the removal").unwrap();
        assert!(matches!(
            alex.process(&after).unwrap(),
            Incoming::Application { .. }
        ));
        assert!(charlie.process(&after).is_err());
    }

    /// An admin creates a group and adds two members; returns them with
    /// the members' sessions (admin first).
    fn group_of_three() -> (Session, Session, Session) {
        let admin_key = IdentityKey::generate().unwrap();
        let mut admin = Session::create_group(&admin_key).unwrap();
        let mut joined = Vec::new();
        for _ in 0..2 {
            let key = IdentityKey::generate().unwrap();
            let (kp, pending) = key_package(&key).unwrap();
            let staged = admin.commit(&[&kp], &[]).unwrap();
            let Incoming::Commit(summary) = admin.process(&staged.commit).unwrap() else {
                panic!("expected a commit")
            };
            assert!(summary.own);
            assert_eq!(summary.added.len(), 1);
            for member in &mut joined {
                let member: &mut Session = member;
                member.process(&staged.commit).unwrap();
            }
            // A group's Welcome comes without the tree (published beside it).
            assert!(Session::join(&key, &pending, &staged.welcomes[0]).is_err());
            let tree = staged.tree.as_deref().unwrap();
            joined.push(Session::join_group(&key, &pending, &staged.welcomes[0], tree).unwrap());
        }
        let second = joined.pop().unwrap();
        let first = joined.pop().unwrap();
        (admin, first, second)
    }

    /// A group's commit that adds several members gives each their own
    /// Welcome, in the order they were added, none carrying the tree: what
    /// a joiner receives does not grow with the number added beside them.
    #[test]
    fn each_member_a_group_adds_gets_a_welcome_of_their_own() {
        let admin_key = IdentityKey::generate().unwrap();
        let mut admin = Session::create_group(&admin_key).unwrap();
        let joiners: Vec<_> = (0..20)
            .map(|_| {
                let key = IdentityKey::generate().unwrap();
                let (kp, pending) = key_package(&key).unwrap();
                (key, kp, pending)
            })
            .collect();
        let kps: Vec<&[u8]> = joiners.iter().map(|(_, kp, _)| kp.as_slice()).collect();
        let staged = admin.commit(&kps, &[]).unwrap();
        admin.process(&staged.commit).unwrap();
        assert_eq!(staged.welcomes.len(), 20);
        let tree = staged.tree.as_deref().unwrap();
        let sizes: Vec<usize> = staged.welcomes.iter().map(Vec::len).collect();
        assert!(
            sizes.iter().max().unwrap() - sizes.iter().min().unwrap() < 16,
            "{sizes:?}"
        );
        for ((key, _, pending), welcome) in joiners.iter().zip(&staged.welcomes) {
            let joined = Session::join_group(key, pending, welcome, tree).unwrap();
            assert_eq!(joined.members().len(), 21);
            assert_eq!(joined.epoch(), admin.epoch());
        }
        // Another joiner's Welcome does not open.
        let (key, _, pending) = &joiners[0];
        assert!(Session::join_group(key, pending, &staged.welcomes[1], tree).is_err());
    }

    #[test]
    fn only_admins_add_or_remove_and_anyone_commits_a_leave() {
        let (mut admin, mut alex, mut blair) = group_of_three();
        assert_eq!(
            alex.admins().unwrap(),
            vec![admin.members()[0].identity_key.clone()]
        );
        let (kp, _) = key_package(&IdentityKey::generate().unwrap()).unwrap();
        let err = alex.commit(&[&kp], &[]).unwrap_err().to_string();
        assert!(err.contains("only an admin may add"), "{err}");
        let err = alex
            .commit(&[], &[blair.own_index()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("only an admin may remove"), "{err}");
        let err = alex
            .commit_with(Changes {
                admins: Some(&[alex.members()[1].identity_key.clone()]),
                ..Changes::default()
            })
            .unwrap_err()
            .to_string();
        assert!(err.contains("only an admin"), "{err}");

        // Blair asks to leave; Alex (not an admin) commits it for her.
        let proposal = blair.propose_leave().unwrap();
        for s in [&mut admin, &mut alex] {
            assert!(matches!(s.process(&proposal).unwrap(), Incoming::Proposal));
            assert!(s.commit_required());
        }
        let leave = alex.commit(&[], &[]).unwrap();
        for s in [&mut admin, &mut alex, &mut blair] {
            let Incoming::Commit(summary) = s.process(&leave.commit).unwrap() else {
                panic!("expected a commit")
            };
            assert_eq!(summary.removed.len(), 1, "{summary:?}");
        }
        assert_eq!(admin.members().len(), 2);
        assert_eq!(
            admin.export("kith test").unwrap(),
            alex.export("kith test").unwrap()
        );
    }

    #[test]
    fn admins_change_by_commit_and_commits_are_encrypted() {
        let (mut admin, mut alex, _blair) = group_of_three();
        let alex_key = alex.members()[1].identity_key.clone();
        let staged = admin
            .commit_with(Changes {
                admins: Some(std::slice::from_ref(&alex_key)),
                authenticated_data: b"sealed elsewhere".to_vec(),
                ..Changes::default()
            })
            .unwrap();
        // The relay sees no proposal and no key: the commit is a PrivateMessage.
        assert!(!staged.commit.windows(alex_key.len()).any(|w| w == alex_key));
        admin.process(&staged.commit).unwrap();
        let Incoming::Commit(summary) = alex.process(&staged.commit).unwrap() else {
            panic!("expected a commit")
        };
        assert!(!summary.own);
        assert_eq!(summary.authenticated_data, b"sealed elsewhere");
        assert_eq!(alex.admins().unwrap(), vec![alex_key]);
        // The old admin is now an ordinary member.
        let (kp, _) = key_package(&IdentityKey::generate().unwrap()).unwrap();
        assert!(admin.commit(&[&kp], &[]).is_err());
        assert!(alex.commit(&[&kp], &[]).is_ok());
    }

    #[test]
    fn snapshots_round_trip_and_refuse_garbage() {
        let (mut alex, _) = pair();
        let snapshot = alex.snapshot().unwrap();
        assert_eq!(
            GroupSnapshot::from_bytes(&snapshot.to_bytes()).unwrap(),
            snapshot
        );
        assert!(GroupSnapshot::from_bytes(&[2, 0]).is_err());
        // Found by the stored_state fuzz target: epochs out of order.
        let mut unordered = vec![1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 2];
        unordered.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0]);
        unordered.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0]);
        assert!(GroupSnapshot::from_bytes(&unordered).is_err());
        assert!(IdentityKey::from_bytes(&[0; 3]).is_err());
        let key = IdentityKey::generate().unwrap();
        assert_eq!(
            IdentityKey::from_bytes(&key.to_bytes()).unwrap().public(),
            key.public()
        );
        assert!(!format!("{key:?}").contains(&hex_prefix(key.secret.as_bytes())));
    }
}
