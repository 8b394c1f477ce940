//! Sealing: `content_hash = BLAKE3(plaintext)`, age encryption to the archive
//! recipients, `blob_hash = BLAKE3(ciphertext)`; and the reverse, which refuses to
//! return a byte that does not hash to what the catalog recorded.
//!
//! Every function here is CPU-bound over megabytes and blocks: call it from
//! `spawn_blocking` or a dedicated thread, never from the async reactor.

use std::io::{Read, Write};

use age::secrecy::ExposeSecret;

use crate::error::{Error, Result};

pub use crate::meta::types::Hash;

/// The keys a node seals and opens blobs with.
pub struct Keys {
    recipients: Vec<age::x25519::Recipient>,
    identity: age::x25519::Identity,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").field("recipients", &self.recipients.len()).finish_non_exhaustive()
    }
}

/// A freshly generated archive identity and its recipient string.
pub struct NewIdentity {
    /// `AGE-SECRET-KEY-1…`; goes into a 0600 file, never into logs.
    pub secret: String,
    /// `age1…`.
    pub recipient: String,
}

/// Generates a new X25519 age identity.
pub fn generate_identity() -> NewIdentity {
    let id = age::x25519::Identity::generate();
    NewIdentity { secret: id.to_string().expose_secret().to_string(), recipient: id.to_public().to_string() }
}

impl Keys {
    /// Parses the recipients and the identity file's text.
    pub fn new(recipients: &[String], identity_text: &str) -> Result<Keys> {
        let recipients = recipients
            .iter()
            .map(|r| r.parse::<age::x25519::Recipient>().map_err(|e| Error::Crypto(format!("recipient {r:?}: {e}"))))
            .collect::<Result<Vec<_>>>()?;
        let line = identity_text
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("AGE-SECRET-KEY-"))
            .ok_or_else(|| Error::Crypto("identity file holds no AGE-SECRET-KEY line".into()))?;
        let identity =
            line.parse::<age::x25519::Identity>().map_err(|e| Error::Crypto(format!("identity file: {e}")))?;
        Ok(Keys { recipients, identity })
    }

    /// Encrypts `plaintext` to every recipient. Blocks.
    pub fn seal(&self, plaintext: &[u8]) -> Result<Sealed> {
        let content_hash = *blake3::hash(plaintext).as_bytes();
        let enc = age::Encryptor::with_recipients(self.recipients.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| Error::Crypto(e.to_string()))?;
        // age adds a header (~200 bytes per recipient) and 16 bytes per 64 KiB chunk.
        let mut ciphertext = Vec::with_capacity(plaintext.len() + plaintext.len() / 4096 + 512);
        let mut w = enc.wrap_output(&mut ciphertext).map_err(|e| Error::Crypto(e.to_string()))?;
        w.write_all(plaintext).map_err(|e| Error::Crypto(e.to_string()))?;
        // Without finish() the last chunk is never written and the blob is silently short.
        w.finish().map_err(|e| Error::Crypto(e.to_string()))?;
        let blob_hash = *blake3::hash(&ciphertext).as_bytes();
        Ok(Sealed { content_hash, blob_hash, ciphertext })
    }

    /// Decrypts an age file sealed to these keys' recipients (backup snapshots, whose
    /// integrity age's AEAD and the hashes inside them carry). Blocks.
    pub fn decrypt(&self, ciphertext: &[u8]) -> std::result::Result<Vec<u8>, String> {
        let dec = age::Decryptor::new(ciphertext).map_err(|e| format!("age header unreadable: {e}"))?;
        let mut r = dec
            .decrypt(std::iter::once(&self.identity as &dyn age::Identity))
            .map_err(|e| format!("cannot decrypt with this identity: {e}"))?;
        let mut plain = Vec::with_capacity(ciphertext.len());
        r.read_to_end(&mut plain).map_err(|e| format!("decryption failed: {e}"))?;
        Ok(plain)
    }

    /// Decrypts and checks the plaintext against `content_hash` only: for a copy sealed
    /// separately from the catalogued one (two recorders briefly recording one camera
    /// seal the same footage twice), which is the same evidence in a different envelope.
    /// Blocks.
    pub fn open_content(&self, ciphertext: &[u8], content_hash: &Hash) -> std::result::Result<Vec<u8>, String> {
        let plain = self.decrypt(ciphertext)?;
        let got = blake3::hash(&plain);
        if got.as_bytes() != content_hash {
            return Err(format!(
                "plaintext BLAKE3 is {} but the catalog recorded {}",
                got.to_hex(),
                hex::encode(content_hash)
            ));
        }
        Ok(plain)
    }

    /// Checks the ciphertext against `blob_hash`, decrypts it and checks the plaintext
    /// against `content_hash`. Returns a description of the first mismatch. Blocks.
    pub fn open(
        &self,
        ciphertext: &[u8],
        blob_hash: &Hash,
        content_hash: &Hash,
    ) -> std::result::Result<Vec<u8>, String> {
        let got = blake3::hash(ciphertext);
        if got.as_bytes() != blob_hash {
            return Err(format!(
                "ciphertext BLAKE3 is {} but the catalog recorded {}",
                got.to_hex(),
                hex::encode(blob_hash)
            ));
        }
        self.open_content(ciphertext, content_hash)
    }
}

/// A sealed segment: both hashes and the ciphertext.
#[derive(Debug)]
pub struct Sealed {
    pub content_hash: Hash,
    pub blob_hash: Hash,
    pub ciphertext: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        let id = generate_identity();
        Keys::new(std::slice::from_ref(&id.recipient), &format!("# key\n{}\n", id.secret)).unwrap()
    }

    #[test]
    fn round_trip_and_tamper_detection() {
        let k = keys();
        let plain: Vec<u8> = (0..300_000u32).map(|i| (i * 7) as u8).collect();
        let s = k.seal(&plain).unwrap();
        assert_eq!(s.content_hash, *blake3::hash(&plain).as_bytes());
        assert_ne!(s.ciphertext[..], plain[..]);
        assert_eq!(k.open(&s.ciphertext, &s.blob_hash, &s.content_hash).unwrap(), plain);

        let mut bad = s.ciphertext.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 1;
        let e = k.open(&bad, &s.blob_hash, &s.content_hash).unwrap_err();
        assert!(e.contains("ciphertext BLAKE3"), "{e}");

        // A forged blob_hash does not let tampered ciphertext through: age's AEAD refuses it.
        let forged = *blake3::hash(&bad).as_bytes();
        assert!(k.open(&bad, &forged, &s.content_hash).is_err());
    }

    #[test]
    fn a_separately_sealed_copy_opens_by_content_only() {
        let k = keys();
        let plain = vec![3u8; 100_000];
        let (a, b) = (k.seal(&plain).unwrap(), k.seal(&plain).unwrap());
        assert_ne!(a.blob_hash, b.blob_hash, "age output is randomised");
        assert!(k.open(&b.ciphertext, &a.blob_hash, &a.content_hash).is_err());
        assert_eq!(k.open_content(&b.ciphertext, &a.content_hash).unwrap(), plain);
        let other = k.seal(&[4u8; 10]).unwrap();
        assert!(k.open_content(&other.ciphertext, &a.content_hash).is_err());
    }

    #[test]
    fn truncated_ciphertext_is_refused() {
        let k = keys();
        let s = k.seal(&[5u8; 200_000]).unwrap();
        let short = &s.ciphertext[..s.ciphertext.len() - 100];
        let h = *blake3::hash(short).as_bytes();
        assert!(k.open(short, &h, &s.content_hash).is_err());
    }
}
