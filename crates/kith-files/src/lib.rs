//! FilesV1 (`docs/spec/files-v1.md`): a file as it travels. No I/O: the
//! engine reads the file, calls [`FileKey::seal_chunk`] per chunk and puts
//! each chunk in a relay blob; the receiver fetches, [`FileKey::open_chunk`]
//! and writes.
//!
//! ```text
//!  file ─┬─ SHA-256 ──────────────────────────────┐
//!        └─ PLAIN-byte pieces, the last zero-padded, then zero pieces
//!           up to a bucketed count (padded_chunks)  │
//!              │ ChaCha20-Poly1305, key and base nonce per file,
//!              │ nonce ⊕ index, AAD = context ‖ index ‖ count
//!              ▼                                    ▼
//!           CHUNK-byte relay blob chunks     Attachment (ContentV1
//!                                            external part: url, key,
//!                                            nonce, size, hash, name)
//! ```

use kith_content::{Disposition, ExternalPart, Part, PartBody};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use zeroize::Zeroizing;

/// Bytes of one encrypted chunk: the relay's largest blob chunk.
pub const CHUNK: u32 = 262_144;
/// The AEAD tag on each chunk.
pub const TAG: usize = 16;
/// File bytes in one chunk.
pub const PLAIN: usize = CHUNK as usize - TAG;
/// `AEAD_CHACHA20_POLY1305` in the IANA AEAD registry (RFC 5116, 8439).
pub const ENC_ALG: u16 = 29;
/// `sha-256` in the IANA Named Information Hash Algorithm registry.
pub const HASH_ALG: u8 = 1;
/// Most chunks of one file: what a relay allows one blob by default
/// (relay.md §12), 4 GiB.
pub const MAX_CHUNKS: u32 = 16_384;
/// Longest file name carried.
pub const MAX_NAME: usize = 255;

const AAD_CONTEXT: &[u8] = b"kith file chunk v1";

/// Why a file or an attachment cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileError {
    #[error("the file is {size} bytes; the most kith carries is {max} bytes")]
    TooLarge { size: u64, max: u64 },
    #[error("chunk {index} does not decrypt: it was altered or cut")]
    Tampered { index: u32 },
    #[error("the attachment is not one this version opens: {0}")]
    Unsupported(&'static str),
    #[error("the file's bytes do not match its hash")]
    HashMismatch,
    #[error("randomness unavailable")]
    Randomness,
}

/// How many chunks a file of `size` bytes takes: enough for its bytes,
/// rounded up to the next of 1, 2, 3, … 8, then eight steps per doubling
/// (9, 10, 11, 12, 14, 16, 18, 20, 22, 24, 28, 32, …), so that the relay
/// learns the size to within an eighth (files-v1.md §3).
pub fn padded_chunks(size: u64) -> Result<u32, FileError> {
    let max = u64::from(MAX_CHUNKS) * PLAIN as u64;
    if size > max {
        return Err(FileError::TooLarge { size, max });
    }
    let needed = size.div_ceil(PLAIN as u64).max(1);
    let mut bucket: u64 = 1;
    while bucket < needed {
        bucket = next_bucket(bucket);
    }
    u32::try_from(bucket.min(u64::from(MAX_CHUNKS))).map_err(|_| FileError::TooLarge { size, max })
}

fn next_bucket(b: u64) -> u64 {
    if b < 8 {
        return b + 1;
    }
    // The step is an eighth of the power of two at or below `b`.
    let power = 1u64 << (63 - b.leading_zeros());
    b + power / 8
}

/// A file's key and base nonce: fresh for every file.
#[derive(Clone, PartialEq, Eq)]
pub struct FileKey {
    key: Zeroizing<[u8; 32]>,
    nonce: [u8; 12],
}

impl std::fmt::Debug for FileKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileKey([redacted])")
    }
}

impl FileKey {
    pub fn generate() -> Result<Self, FileError> {
        let mut key = Zeroizing::new([0u8; 32]);
        let mut nonce = [0u8; 12];
        getrandom::fill(key.as_mut_slice()).map_err(|_| FileError::Randomness)?;
        getrandom::fill(&mut nonce).map_err(|_| FileError::Randomness)?;
        Ok(Self { key, nonce })
    }

    pub fn from_parts(key: &[u8], nonce: &[u8]) -> Result<Self, FileError> {
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| FileError::Unsupported("a key that is not 32 bytes"))?;
        let nonce: [u8; 12] = nonce
            .try_into()
            .map_err(|_| FileError::Unsupported("a nonce that is not 12 bytes"))?;
        Ok(Self {
            key: Zeroizing::new(key),
            nonce,
        })
    }

    pub fn key(&self) -> &[u8; 32] {
        &self.key
    }

    pub fn nonce(&self) -> &[u8; 12] {
        &self.nonce
    }

    fn cipher_inputs(&self, index: u32, count: u32) -> (Nonce, [u8; 26]) {
        let mut nonce = self.nonce;
        for (n, i) in nonce.iter_mut().skip(8).zip(index.to_be_bytes()) {
            *n ^= i;
        }
        let mut aad = [0u8; 26];
        let (ctx, rest) = aad.split_at_mut(AAD_CONTEXT.len());
        ctx.copy_from_slice(AAD_CONTEXT);
        let (idx, cnt) = rest.split_at_mut(4);
        idx.copy_from_slice(&index.to_be_bytes());
        cnt.copy_from_slice(&count.to_be_bytes());
        (Nonce::assume_unique_for_key(nonce), aad)
    }

    /// ring's ChaCha20-Poly1305: several times faster than a portable one
    /// on the 256 KiB chunks of a file, and it works in place.
    fn cipher(&self) -> Result<LessSafeKey, FileError> {
        UnboundKey::new(&CHACHA20_POLY1305, self.key.as_ref())
            .map(LessSafeKey::new)
            .map_err(|_| FileError::Unsupported("a key that is not 32 bytes"))
    }

    /// Chunk `index` of `count`: `plain` (at most [`PLAIN`] bytes; less
    /// only at the file's end) zero-padded and encrypted, [`CHUNK`] bytes.
    pub fn seal_chunk(&self, index: u32, count: u32, plain: &[u8]) -> Result<Vec<u8>, FileError> {
        if plain.len() > PLAIN || index >= count {
            return Err(FileError::Unsupported("a chunk beyond its file"));
        }
        let mut sealed = Vec::with_capacity(CHUNK as usize);
        sealed.extend_from_slice(plain);
        sealed.resize(PLAIN, 0);
        let (nonce, aad) = self.cipher_inputs(index, count);
        self.cipher()?
            .seal_in_place_append_tag(nonce, Aad::from(aad), &mut sealed)
            .map_err(|_| FileError::Unsupported("a chunk that does not encrypt"))?;
        Ok(sealed)
    }

    /// The [`PLAIN`] bytes of chunk `index` of `count`, or
    /// [`FileError::Tampered`] if it is not exactly what was sealed there.
    pub fn open_chunk(&self, index: u32, count: u32, sealed: &[u8]) -> Result<Vec<u8>, FileError> {
        let (nonce, aad) = self.cipher_inputs(index, count);
        let mut plain = sealed.to_vec();
        let len = self
            .cipher()?
            .open_in_place(nonce, Aad::from(aad), &mut plain)
            .map_err(|_| FileError::Tampered { index })?
            .len();
        plain.truncate(len);
        Ok(plain)
    }
}

/// The hash a file message carries (files-v1.md §4): SHA-256 of the
/// file's bytes, fed in order (ring's, which uses the CPU's SHA
/// instructions where it has them).
pub struct FileHasher(ring::digest::Context);

impl FileHasher {
    pub fn new() -> Self {
        Self(ring::digest::Context::new(&ring::digest::SHA256))
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub fn finish(self) -> [u8; 32] {
        let mut hash = [0u8; 32];
        hash.copy_from_slice(self.0.finish().as_ref());
        hash
    }
}

impl Default for FileHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for FileHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileHasher")
    }
}

impl std::io::Write for FileHasher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A file as its message names it (files-v1.md §4): a ContentV1 external
/// part with disposition attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The relay that holds the blob, as its base URL.
    pub relay_url: String,
    pub blob_id: [u8; 32],
    pub key: FileKey,
    /// The file's length in bytes (before padding).
    pub size: u64,
    /// SHA-256 of the file's bytes.
    pub hash: [u8; 32],
    pub filename: String,
    pub content_type: String,
    /// A caption; may be empty.
    pub caption: String,
    /// Unix seconds after which the blob may be gone.
    pub expires: u32,
}

/// Where a blob is named in an external part's URL.
const BLOB_PATH: &str = "/v1/blob/";

impl Attachment {
    /// Its chunks on the relay.
    pub fn chunk_count(&self) -> Result<u32, FileError> {
        padded_chunks(self.size)
    }

    /// The external part that carries it.
    pub fn to_part(&self) -> Part {
        let mut hex = String::with_capacity(64);
        for b in self.blob_id {
            hex.push_str(&format!("{b:02x}"));
        }
        Part {
            disposition: Disposition::ATTACHMENT,
            language: String::new(),
            body: PartBody::External(Box::new(ExternalPart {
                content_type: self.content_type.clone(),
                url: format!("{}{BLOB_PATH}{hex}", self.relay_url.trim_end_matches('/')),
                expires: self.expires,
                size: self.size,
                enc_alg: ENC_ALG,
                key: self.key.key().to_vec(),
                nonce: self.key.nonce().to_vec(),
                aad: Vec::new(),
                hash_alg: HASH_ALG,
                content_hash: self.hash.to_vec(),
                description: self.caption.clone(),
                filename: self.filename.clone(),
            })),
        }
    }

    /// Reads an external part, refusing any this version cannot fetch,
    /// open and check.
    pub fn from_part(part: &ExternalPart) -> Result<Self, FileError> {
        if part.enc_alg != ENC_ALG {
            return Err(FileError::Unsupported(
                "an encryption other than ChaCha20-Poly1305",
            ));
        }
        if part.hash_alg != HASH_ALG {
            return Err(FileError::Unsupported("a hash other than SHA-256"));
        }
        if !part.aad.is_empty() {
            return Err(FileError::Unsupported("additional data"));
        }
        let hash: [u8; 32] = part
            .content_hash
            .as_slice()
            .try_into()
            .map_err(|_| FileError::Unsupported("a hash that is not 32 bytes"))?;
        let (relay_url, hex) = part
            .url
            .rsplit_once(BLOB_PATH)
            .ok_or(FileError::Unsupported("a URL that names no relay blob"))?;
        if !(relay_url.starts_with("https://") || relay_url.starts_with("http://")) {
            return Err(FileError::Unsupported("a URL that is not http(s)"));
        }
        let blob_id = parse_hex32(hex).ok_or(FileError::Unsupported("a malformed blob id"))?;
        padded_chunks(part.size)?;
        Ok(Self {
            relay_url: relay_url.to_owned(),
            blob_id,
            key: FileKey::from_parts(&part.key, &part.nonce)?,
            size: part.size,
            hash,
            filename: part.filename.clone(),
            content_type: part.content_type.clone(),
            caption: part.description.clone(),
            expires: part.expires,
        })
    }
}

fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A peer's file name made safe to create in a directory: no path, no
/// control or separator characters, no leading dot, at most
/// [`MAX_NAME`] bytes; `file` if nothing is left.
pub fn safe_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut out: String = base
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '/' | '\\' | ':' | '\u{202e}' | '\u{202d}') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let trimmed = out.trim_start_matches(['.', ' ']).trim_end().to_owned();
    out = trimmed;
    while out.len() > MAX_NAME {
        out.pop();
    }
    if out.is_empty() {
        "file".to_owned()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn sizes_are_padded_to_buckets() {
        let p = PLAIN as u64;
        assert_eq!(padded_chunks(0).unwrap(), 1);
        assert_eq!(padded_chunks(p).unwrap(), 1);
        assert_eq!(padded_chunks(p + 1).unwrap(), 2);
        assert_eq!(padded_chunks(8 * p + 1).unwrap(), 9);
        assert_eq!(padded_chunks(16 * p + 1).unwrap(), 18);
        // 200 MiB: 801 chunks of file bytes, sent as 832.
        assert_eq!(padded_chunks(200 << 20).unwrap(), 832);
        // 1 GiB: 4,097, sent as 4,608 (at most an eighth more).
        assert_eq!(padded_chunks(1 << 30).unwrap(), 4608);
        assert!(padded_chunks(u64::from(MAX_CHUNKS) * p + 1).is_err());
        let mut b = 1u64;
        while b < u64::from(MAX_CHUNKS) {
            let next = next_bucket(b);
            assert!(next * 8 <= b * 9 + 8, "{b} → {next}");
            b = next;
        }
    }

    #[test]
    fn chunks_open_only_where_they_were_sealed() {
        let key = FileKey::generate().unwrap();
        let sealed = key.seal_chunk(3, 9, b"hello").unwrap();
        assert_eq!(sealed.len(), CHUNK as usize);
        let opened = key.open_chunk(3, 9, &sealed).unwrap();
        assert_eq!(&opened[..5], b"hello");
        assert!(opened[5..].iter().all(|b| *b == 0));
        assert_eq!(
            key.open_chunk(4, 9, &sealed),
            Err(FileError::Tampered { index: 4 })
        );
        assert_eq!(
            key.open_chunk(3, 8, &sealed),
            Err(FileError::Tampered { index: 3 })
        );
        let mut altered = sealed.clone();
        altered[100] ^= 1;
        assert!(key.open_chunk(3, 9, &altered).is_err());
        assert!(key.open_chunk(3, 9, &sealed[..1000]).is_err());
        assert_eq!(format!("{key:?}"), "FileKey([redacted])");
    }

    /// The chunk format is the spec's, not ring's: an independent
    /// ChaCha20-Poly1305 (RustCrypto) with the nonce and AAD of
    /// files-v1.md §2 opens what this seals, and the other way round.
    #[test]
    fn chunks_are_chacha20_poly1305_as_the_spec_writes_it() {
        use chacha20poly1305::aead::{Aead, KeyInit, Payload};
        let key = FileKey::from_parts(&[0x42; 32], &[0x17; 12]).unwrap();
        let (index, count) = (0x0102_0304u32, 0x0a0b_0c0du32);
        let mut nonce = [0x17u8; 12];
        for (n, i) in nonce[8..].iter_mut().zip(index.to_be_bytes()) {
            *n ^= i;
        }
        let mut aad = b"kith file chunk v1".to_vec();
        aad.extend_from_slice(&index.to_be_bytes());
        aad.extend_from_slice(&count.to_be_bytes());
        let other = chacha20poly1305::ChaCha20Poly1305::new(&[0x42; 32].into());
        let sealed = key.seal_chunk(index, count, b"spec").unwrap();
        let payload = |msg| Payload { msg, aad: &aad };
        let opened = other.decrypt(&nonce.into(), payload(&sealed)).unwrap();
        assert_eq!((&opened[..4], opened.len()), (&b"spec"[..], PLAIN));
        let mut plain = b"back".to_vec();
        plain.resize(PLAIN, 0);
        let theirs = other.encrypt(&nonce.into(), payload(&plain)).unwrap();
        assert_eq!(key.open_chunk(index, count, &theirs).unwrap(), plain);
    }

    #[test]
    fn the_file_hash_is_sha256() {
        use sha2::Digest as _;
        let bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        let mut h = FileHasher::new();
        for piece in bytes.chunks(7_777) {
            h.update(piece);
        }
        assert_eq!(h.finish(), <[u8; 32]>::from(sha2::Sha256::digest(&bytes)));
    }

    #[test]
    fn an_attachment_round_trips_through_its_part() {
        let a = Attachment {
            relay_url: "https://relay.example/cgi-bin/kith".into(),
            blob_id: [7; 32],
            key: FileKey::generate().unwrap(),
            size: 1234,
            hash: [9; 32],
            filename: "beach.jpg".into(),
            content_type: "image/jpeg".into(),
            caption: "the beach".into(),
            expires: 1_800_000_000,
        };
        let PartBody::External(x) = a.to_part().body else {
            panic!("not external")
        };
        assert_eq!(Attachment::from_part(&x).unwrap(), a);
        let mut bad = (*x).clone();
        bad.url = "file:///etc/passwd".into();
        assert!(Attachment::from_part(&bad).is_err());
    }

    #[test]
    fn peer_file_names_cannot_escape_the_directory() {
        assert_eq!(safe_name("../../.bashrc"), "bashrc");
        assert_eq!(safe_name("a/b\\c.txt"), "c.txt");
        assert_eq!(safe_name("re\u{1b}[31mport.pdf"), "re_[31mport.pdf");
        assert_eq!(safe_name(".."), "file");
        assert_eq!(safe_name(""), "file");
        assert!(safe_name(&"x".repeat(1000)).len() <= MAX_NAME);
    }
}
