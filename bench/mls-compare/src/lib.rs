//! The operations kith performs with MLS, written once per crate behind one
//! trait so the benchmark drives both the same way.
//!
//! Both stacks use ciphersuite 1 (MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519),
//! RustCrypto primitives, in-memory storage, and a ratchet tree carried in
//! the Welcome. mls-rs keeps group state in memory until `write_to_storage`,
//! openmls writes its storage provider on every operation; every operation
//! that changes state here ends with the state persisted, as kith will.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

pub const PAYLOAD: usize = 1024;

/// One client with at most one group.
pub trait Member {
    fn new(name: &str) -> Self;
    /// A serialized KeyPackage message.
    fn key_package(&mut self) -> Vec<u8>;
    fn create_group(&mut self);
    /// Commits adding the members, applies it; returns (commit, welcome).
    fn add(&mut self, key_packages: &[Vec<u8>]) -> (Vec<u8>, Vec<u8>);
    /// Builds an add commit and discards it (measures commit creation alone).
    fn add_discard(&mut self, key_package: &[u8]) -> usize;
    fn join(&mut self, welcome: &[u8]);
    fn encrypt(&mut self, plaintext: &[u8]) -> Vec<u8>;
    fn decrypt(&mut self, message: &[u8]) -> Vec<u8>;
    /// A self-update (empty path) commit, applied; returns the commit.
    fn update(&mut self) -> Vec<u8>;
    fn process_commit(&mut self, commit: &[u8]);
}

pub mod rs {
    use mls_rs::client_builder::{
        BaseConfig, IntoConfigOutput, WithCryptoProvider, WithIdentityProvider,
    };
    use mls_rs::identity::SigningIdentity;
    use mls_rs::identity::basic::{BasicCredential, BasicIdentityProvider};
    use mls_rs::{CipherSuite, CipherSuiteProvider, Client, CryptoProvider, Group, MlsMessage};
    use mls_rs_crypto_rustcrypto::RustCryptoProvider;

    type Config = IntoConfigOutput<
        WithCryptoProvider<
            RustCryptoProvider,
            WithIdentityProvider<BasicIdentityProvider, BaseConfig>,
        >,
    >;

    const SUITE: CipherSuite = CipherSuite::CURVE25519_AES128;

    pub struct MlsRs {
        client: Client<Config>,
        group: Option<Group<Config>>,
    }

    impl MlsRs {
        fn group(&mut self) -> &mut Group<Config> {
            self.group.as_mut().unwrap()
        }
    }

    impl super::Member for MlsRs {
        fn new(name: &str) -> Self {
            let crypto = RustCryptoProvider::default();
            let suite = crypto.cipher_suite_provider(SUITE).unwrap();
            let (secret, public) = suite.signature_key_generate().unwrap();
            let credential = BasicCredential::new(name.as_bytes().to_vec()).into_credential();
            let client = Client::builder()
                .identity_provider(BasicIdentityProvider)
                .crypto_provider(crypto)
                .signing_identity(SigningIdentity::new(credential, public), secret, SUITE)
                .build();
            Self {
                client,
                group: None,
            }
        }

        fn key_package(&mut self) -> Vec<u8> {
            let kp = self
                .client
                .generate_key_package_message(Default::default(), Default::default(), None)
                .unwrap();
            kp.to_bytes().unwrap()
        }

        fn create_group(&mut self) {
            let mut group = self
                .client
                .create_group(Default::default(), Default::default(), None)
                .unwrap();
            group.write_to_storage().unwrap();
            self.group = Some(group);
        }

        fn add(&mut self, key_packages: &[Vec<u8>]) -> (Vec<u8>, Vec<u8>) {
            let group = self.group();
            let mut builder = group.commit_builder();
            for kp in key_packages {
                builder = builder
                    .add_member(MlsMessage::from_bytes(kp).unwrap())
                    .unwrap();
            }
            let output = builder.build().unwrap();
            group.apply_pending_commit().unwrap();
            group.write_to_storage().unwrap();
            (
                output.commit_message.to_bytes().unwrap(),
                output.welcome_messages[0].to_bytes().unwrap(),
            )
        }

        fn add_discard(&mut self, key_package: &[u8]) -> usize {
            let group = self.group();
            let output = group
                .commit_builder()
                .add_member(MlsMessage::from_bytes(key_package).unwrap())
                .unwrap()
                .build()
                .unwrap();
            group.clear_pending_commit();
            output.commit_message.to_bytes().unwrap().len()
        }

        fn join(&mut self, welcome: &[u8]) {
            let welcome = MlsMessage::from_bytes(welcome).unwrap();
            let (mut group, _) = self.client.join_group(None, &welcome, None).unwrap();
            group.write_to_storage().unwrap();
            self.group = Some(group);
        }

        fn encrypt(&mut self, plaintext: &[u8]) -> Vec<u8> {
            let group = self.group();
            let message = group
                .encrypt_application_message(plaintext, Vec::new())
                .unwrap();
            group.write_to_storage().unwrap();
            message.to_bytes().unwrap()
        }

        fn decrypt(&mut self, message: &[u8]) -> Vec<u8> {
            let group = self.group();
            let received = group
                .process_incoming_message(MlsMessage::from_bytes(message).unwrap())
                .unwrap();
            group.write_to_storage().unwrap();
            match received {
                mls_rs::group::ReceivedMessage::ApplicationMessage(m) => m.data().to_vec(),
                _ => panic!("not an application message"),
            }
        }

        fn update(&mut self) -> Vec<u8> {
            let group = self.group();
            let output = group.commit_builder().build().unwrap();
            group.apply_pending_commit().unwrap();
            group.write_to_storage().unwrap();
            output.commit_message.to_bytes().unwrap()
        }

        fn process_commit(&mut self, commit: &[u8]) {
            let group = self.group();
            group
                .process_incoming_message(MlsMessage::from_bytes(commit).unwrap())
                .unwrap();
            group.write_to_storage().unwrap();
        }
    }
}

pub mod open {
    use openmls::prelude::tls_codec::{Deserialize, Serialize};
    use openmls::prelude::*;
    use openmls::treesync::LeafNodeParameters;
    use openmls_basic_credential::SignatureKeyPair;
    use openmls_rust_crypto::OpenMlsRustCrypto;

    const SUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

    pub struct OpenMls {
        provider: OpenMlsRustCrypto,
        signer: SignatureKeyPair,
        credential: CredentialWithKey,
        group: Option<MlsGroup>,
    }

    fn protocol_message(bytes: &[u8]) -> ProtocolMessage {
        MlsMessageIn::tls_deserialize_exact(bytes)
            .unwrap()
            .try_into_protocol_message()
            .unwrap()
    }

    impl OpenMls {
        fn group(&mut self) -> (&OpenMlsRustCrypto, &SignatureKeyPair, &mut MlsGroup) {
            (&self.provider, &self.signer, self.group.as_mut().unwrap())
        }
    }

    impl super::Member for OpenMls {
        fn new(name: &str) -> Self {
            let provider = OpenMlsRustCrypto::default();
            let signer = SignatureKeyPair::new(SUITE.signature_algorithm()).unwrap();
            signer.store(provider.storage()).unwrap();
            let credential = CredentialWithKey {
                credential: BasicCredential::new(name.as_bytes().to_vec()).into(),
                signature_key: signer.to_public_vec().into(),
            };
            Self {
                provider,
                signer,
                credential,
                group: None,
            }
        }

        fn key_package(&mut self) -> Vec<u8> {
            let bundle = KeyPackage::builder()
                .build(SUITE, &self.provider, &self.signer, self.credential.clone())
                .unwrap();
            MlsMessageOut::from(bundle.key_package().clone())
                .tls_serialize_detached()
                .unwrap()
        }

        fn create_group(&mut self) {
            let config = MlsGroupCreateConfig::builder()
                .ciphersuite(SUITE)
                .use_ratchet_tree_extension(true)
                .build();
            let group = MlsGroup::new(
                &self.provider,
                &self.signer,
                &config,
                self.credential.clone(),
            )
            .unwrap();
            self.group = Some(group);
        }

        fn add(&mut self, key_packages: &[Vec<u8>]) -> (Vec<u8>, Vec<u8>) {
            let (provider, signer, group) = self.group();
            let kps: Vec<KeyPackage> = key_packages
                .iter()
                .map(|kp| {
                    let MlsMessageBodyIn::KeyPackage(kp) =
                        MlsMessageIn::tls_deserialize_exact(kp).unwrap().extract()
                    else {
                        panic!("not a key package")
                    };
                    kp.validate(provider.crypto(), ProtocolVersion::Mls10)
                        .unwrap()
                })
                .collect();
            let (commit, welcome, _) = group.add_members(provider, signer, &kps).unwrap();
            group.merge_pending_commit(provider).unwrap();
            (
                commit.tls_serialize_detached().unwrap(),
                welcome.tls_serialize_detached().unwrap(),
            )
        }

        fn add_discard(&mut self, key_package: &[u8]) -> usize {
            let (provider, signer, group) = self.group();
            let MlsMessageBodyIn::KeyPackage(kp) = MlsMessageIn::tls_deserialize_exact(key_package)
                .unwrap()
                .extract()
            else {
                panic!("not a key package")
            };
            let kp = kp
                .validate(provider.crypto(), ProtocolVersion::Mls10)
                .unwrap();
            let (commit, _, _) = group.add_members(provider, signer, &[kp]).unwrap();
            group.clear_pending_commit(provider.storage()).unwrap();
            commit.tls_serialize_detached().unwrap().len()
        }

        fn join(&mut self, welcome: &[u8]) {
            let MlsMessageBodyIn::Welcome(welcome) = MlsMessageIn::tls_deserialize_exact(welcome)
                .unwrap()
                .extract()
            else {
                panic!("not a welcome")
            };
            let config = MlsGroupJoinConfig::builder()
                .use_ratchet_tree_extension(true)
                .build();
            let group = StagedWelcome::new_from_welcome(&self.provider, &config, welcome, None)
                .unwrap()
                .into_group(&self.provider)
                .unwrap();
            self.group = Some(group);
        }

        fn encrypt(&mut self, plaintext: &[u8]) -> Vec<u8> {
            let (provider, signer, group) = self.group();
            group
                .create_message(provider, signer, plaintext)
                .unwrap()
                .tls_serialize_detached()
                .unwrap()
        }

        fn decrypt(&mut self, message: &[u8]) -> Vec<u8> {
            let (provider, _, group) = self.group();
            let processed = group
                .process_message(provider, protocol_message(message))
                .unwrap();
            match processed.into_content() {
                ProcessedMessageContent::ApplicationMessage(m) => m.into_bytes(),
                _ => panic!("not an application message"),
            }
        }

        fn update(&mut self) -> Vec<u8> {
            let (provider, signer, group) = self.group();
            let bundle = group
                .self_update(provider, signer, LeafNodeParameters::default())
                .unwrap();
            group.merge_pending_commit(provider).unwrap();
            bundle.commit().tls_serialize_detached().unwrap()
        }

        fn process_commit(&mut self, commit: &[u8]) {
            let (provider, _, group) = self.group();
            let processed = group
                .process_message(provider, protocol_message(commit))
                .unwrap();
            let ProcessedMessageContent::StagedCommitMessage(staged) = processed.into_content()
            else {
                panic!("not a commit")
            };
            group.merge_staged_commit(provider, *staged).unwrap();
        }
    }
}
