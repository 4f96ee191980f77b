//! The serialised form of results (their weight in the local tier, their value in Redis) and
//! of key fields: postcard, compact and fast, or CBOR for the types postcard cannot encode
//! (`#[serde(flatten)]` needs a self-describing format). A leading byte says which.

use serde::Serialize;
use serde::de::DeserializeOwned;

const POSTCARD: u8 = 1;
const CBOR: u8 = 2;

/// `value` encoded, or `None` if neither format can encode it. Deterministic: the same value
/// always gives the same bytes (for types without hash maps).
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Option<Vec<u8>> {
    if let Ok(out) = postcard::to_extend(value, vec![POSTCARD]) {
        return Some(out);
    }
    let mut out = vec![CBOR];
    ciborium::into_writer(value, &mut out).ok()?;
    Some(out)
}

/// The value `encode` made, or `None` for bytes it did not make.
#[cfg_attr(not(any(feature = "redis", test)), expect(dead_code))]
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    match bytes.split_first()? {
        (&POSTCARD, rest) => postcard::from_bytes(rest).ok(),
        (&CBOR, rest) => ciborium::from_reader(rest).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Inner {
        a: u32,
    }

    #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Flat {
        name: String,
        #[serde(flatten)]
        inner: Inner,
    }

    #[test]
    fn plain_types_use_postcard() {
        let v = (
            vec![1u8, 2, 3],
            "x".to_owned(),
            BTreeMap::from([(1u8, 2u8)]),
        );
        let bytes = encode(&v).expect("encodes");
        assert_eq!(bytes[0], POSTCARD);
        assert_eq!(
            decode::<(Vec<u8>, String, BTreeMap<u8, u8>)>(&bytes),
            Some(v)
        );
    }

    #[test]
    fn flattened_types_use_cbor() {
        let v = Flat {
            name: "n".to_owned(),
            inner: Inner { a: 7 },
        };
        let bytes = encode(&v).expect("encodes");
        assert_eq!(bytes[0], CBOR);
        assert_eq!(encode(&v), Some(bytes.clone()), "deterministic");
        assert_eq!(decode::<Flat>(&bytes), Some(v));
    }

    #[test]
    fn foreign_bytes_do_not_decode() {
        assert_eq!(decode::<u8>(&[]), None);
        assert_eq!(decode::<u8>(&[9, 1]), None);
        assert_eq!(decode::<String>(&[POSTCARD, 5, b'a']), None);
    }
}
