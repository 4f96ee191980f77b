//! Content keys: what a task's result is called, a keyed BLAKE3 hash of everything that
//! determines it.

use std::fmt;

use serde::Serialize;

use crate::codec;

/// Separates this crate's keys from any other use of the same secret, and lets a future
/// change of the key layout start afresh (old keys simply stop matching).
const DOMAIN: &[u8] = b"offload-cache/v1";

/// The secret of the keyed hash behind every [`Key`].
///
/// Keys are a MAC of the task's content, not a plain hash: without the secret, nobody can
/// compute the key of some content, let alone craft two contents with the same key. Replicas
/// that share a Redis tier must use the same secret (otherwise they compute different keys for
/// the same task and never share anything); [`Builder::build`](crate::Builder::build) refuses
/// a shared tier without one. A cache without a shared tier gets a random secret per instance
/// unless one is set.
///
/// ```
/// use offload_cache::Secret;
///
/// // From configuration shared by the replicas (an environment variable, a secret store).
/// let a = Secret::from_passphrase("correct horse battery staple");
/// let b = Secret::from_passphrase("correct horse battery staple");
/// assert_eq!(a, b);
/// assert_ne!(a, Secret::random());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret([u8; 32]);

impl Secret {
    /// A secret from 32 bytes of key material.
    pub fn from_bytes(bytes: [u8; 32]) -> Secret {
        Secret(bytes)
    }

    /// A secret derived from a passphrase of any length (BLAKE3's key derivation mode).
    pub fn from_passphrase(passphrase: &str) -> Secret {
        Secret(blake3::derive_key(
            "offload-cache 2026-12 content key secret",
            passphrase.as_bytes(),
        ))
    }

    /// 32 bytes from the operating system's random source.
    ///
    /// # Panics
    ///
    /// If the operating system has no random source to offer (`getrandom` fails), which a
    /// program cannot recover from anyway.
    pub fn random() -> Secret {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the operating system provides random bytes");
        Secret(bytes)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The name of one task's result: 32 bytes of keyed BLAKE3 over the task's
/// [`name`](offload::Task::name) and everything its [`Cacheable::write_key`] wrote.
///
/// `Display` gives 64 lowercase hex digits, what an HTTP `ETag` or a Redis key is made of.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key([u8; 32]);

impl Key {
    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({self})")
    }
}

/// What a [`Cacheable`] task writes its key into: each call appends one field, framed with a
/// tag and its length so that no two different sequences of fields hash alike (`("ab", "c")`
/// and `("a", "bc")` differ).
pub struct KeyWriter {
    hasher: blake3::Hasher,
    /// Set when a [`serde`](KeyWriter::serde) field could not be encoded: the key would then
    /// miss that field, so the cache runs the task without caching rather than risk two
    /// different tasks sharing a key.
    failed: bool,
}

impl fmt::Debug for KeyWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyWriter")
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl KeyWriter {
    /// A writer for the task named `task`, keyed with `secret`.
    pub(crate) fn new(secret: &Secret, task: &str) -> KeyWriter {
        let mut writer = KeyWriter {
            hasher: blake3::Hasher::new_keyed(&secret.0),
            failed: false,
        };
        writer.field(b'd', DOMAIN);
        writer.field(b'n', task.as_bytes());
        writer
    }

    fn field(&mut self, tag: u8, bytes: &[u8]) {
        self.hasher.update(&[tag]);
        self.hasher.update(&(bytes.len() as u64).to_le_bytes());
        self.hasher.update(bytes);
    }

    /// Appends a byte string, such as the task's input. BLAKE3 reads it with SIMD, several
    /// GB/s: hashing is small next to the work it saves, but it runs on the caller's thread.
    pub fn bytes(&mut self, bytes: &[u8]) -> &mut KeyWriter {
        self.field(b'b', bytes);
        self
    }

    /// Appends a string.
    pub fn str(&mut self, s: &str) -> &mut KeyWriter {
        self.field(b's', s.as_bytes());
        self
    }

    /// Appends an integer.
    pub fn u64(&mut self, n: u64) -> &mut KeyWriter {
        self.field(b'u', &n.to_le_bytes());
        self
    }

    /// Appends the serde form of `value` (postcard, or CBOR for what postcard cannot
    /// encode): the easy way to include every field of an options struct, including fields
    /// added later. The encoding must be deterministic: structs, enums, vectors, `BTreeMap`s
    /// and numbers are; a `HashMap` is not (its iteration order varies), so convert it to a
    /// sorted form first. Large byte vectors go faster through [`bytes`](KeyWriter::bytes).
    pub fn serde<T: Serialize + ?Sized>(&mut self, value: &T) -> &mut KeyWriter {
        match codec::encode(value) {
            Some(encoded) => self.field(b'j', &encoded),
            None => self.failed = true,
        }
        self
    }

    /// The key, or `None` if a field could not be encoded.
    pub(crate) fn finish(&self) -> Option<Key> {
        (!self.failed).then(|| Key(*self.hasher.finalize().as_bytes()))
    }
}

/// What a result may be cached as, decided by [`Cacheable::keep`] per output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// A result: kept for the cache's [`ttl`](crate::Builder::ttl).
    Value,
    /// A refusal that depends only on the input (a decompression bomb, a bad parameter, a
    /// malformed file): kept for the [`negative_ttl`](crate::Builder::negative_ttl) when one
    /// is set, so the same bad input is refused from the cache; otherwise not kept.
    Refusal,
    /// Not kept: a failure that may not happen again (an internal error).
    Nothing,
}

impl Keep {
    /// The usual choice for a task whose output is a `Result`: `Ok` is a
    /// [`Value`](Keep::Value), `Err` is kept as a [`Refusal`](Keep::Refusal) when
    /// `is_input_error(err)` says so, and not at all otherwise.
    pub fn result<T, E>(output: &Result<T, E>, is_input_error: impl FnOnce(&E) -> bool) -> Keep {
        match output {
            Ok(_) => Keep::Value,
            Err(e) if is_input_error(e) => Keep::Refusal,
            Err(_) => Keep::Nothing,
        }
    }
}

/// A task that can name its result: its key covers every input byte and every parameter
/// that can change the output, so equal keys mean equal results.
///
/// The key also covers the task's [`name`](offload::Task::name), so two task types must not
/// share a name. Errors of the runner ([`offload::Error`]: a panic, a timeout, an overload)
/// are never cached; the task's own errors, inside its output, are cached only as
/// [`keep`](Cacheable::keep) says.
///
/// # Examples
///
/// ```
/// use offload::Task;
/// use offload_cache::{Cacheable, Keep, KeyWriter};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Upper {
///     text: String,
///     repeat: u32,
/// }
///
/// impl Task for Upper {
///     type Output = String;
///     fn run(self) -> String { self.text.to_uppercase().repeat(self.repeat as usize) }
///     fn name(&self) -> &'static str { "upper" }
/// }
///
/// impl Cacheable for Upper {
///     fn write_key(&self, key: &mut KeyWriter) {
///         // Destructure, so that a new field fails to compile until it is in the key.
///         let Upper { text, repeat } = self;
///         key.str(text).u64(u64::from(*repeat));
///     }
///
///     fn keep(_: &String) -> Keep {
///         Keep::Value
///     }
/// }
/// ```
pub trait Cacheable: offload::Portable<Output: Clone + Sync> {
    /// Writes everything that determines the output into `key`.
    fn write_key(&self, key: &mut KeyWriter);

    /// Whether `output` may be cached, and how long (see [`Keep`]).
    fn keep(output: &Self::Output) -> Keep;
}

/// The key of `task` under `secret`, or `None` when a field could not be encoded.
pub(crate) fn key_of<T: Cacheable>(secret: &Secret, task: &T) -> Option<Key> {
    let mut writer = KeyWriter::new(secret, offload::Task::name(task));
    task.write_key(&mut writer);
    writer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: &Secret, fields: &[&str]) -> Key {
        let mut w = KeyWriter::new(secret, "t");
        for f in fields {
            w.str(f);
        }
        w.finish().expect("strings always encode")
    }

    #[test]
    fn framing_separates_fields() {
        let s = Secret::from_bytes([7; 32]);
        assert_ne!(key(&s, &["ab", "c"]), key(&s, &["a", "bc"]));
        assert_ne!(key(&s, &["abc"]), key(&s, &["abc", ""]));
        assert_eq!(key(&s, &["ab", "c"]), key(&s, &["ab", "c"]));
    }

    #[test]
    fn the_secret_and_the_name_are_in_the_key() {
        let a = Secret::from_bytes([1; 32]);
        let b = Secret::from_bytes([2; 32]);
        assert_ne!(key(&a, &["x"]), key(&b, &["x"]));
        let mut other_name = KeyWriter::new(&a, "u");
        other_name.str("x");
        assert_ne!(other_name.finish(), Some(key(&a, &["x"])));
    }

    #[test]
    fn key_displays_as_hex() {
        let k = key(&Secret::from_bytes([0; 32]), &[]);
        let hex = k.to_string();
        assert_eq!(hex.len(), 64);
        assert!(
            hex.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }

    #[test]
    fn secret_debug_is_redacted() {
        assert_eq!(
            format!("{:?}", Secret::from_bytes([9; 32])),
            "Secret(<redacted>)"
        );
    }
}
