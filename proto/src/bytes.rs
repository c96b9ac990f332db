//! Binary values on the wire: standard base64 (RFC 4648 §4, padded) in JSON strings.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// Bytes that serialize as a standard, padded base64 string.
///
/// Used for digests, signatures, public keys (SPKI DER) and certificates (DER). Never used for secrets.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Base64Bytes(pub Vec<u8>);

impl Base64Bytes {
    pub fn encode(&self) -> String {
        STANDARD.encode(&self.0)
    }

    pub fn decode(text: &str) -> Option<Self> {
        STANDARD.decode(text).ok().map(Self)
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for Base64Bytes {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl From<&[u8]> for Base64Bytes {
    fn from(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }
}

impl std::fmt::Debug for Base64Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Base64Bytes({})", self.encode())
    }
}

impl serde::Serialize for Base64Bytes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.encode())
    }
}

impl<'de> serde::Deserialize<'de> for Base64Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::decode(&text).ok_or_else(|| serde::de::Error::custom("invalid base64"))
    }
}

#[cfg(test)]
mod tests {
    use super::Base64Bytes;

    #[test]
    fn round_trips_through_json() {
        let value = Base64Bytes(vec![0, 1, 2, 250, 255]);
        let json = serde_json::to_string(&value).expect("serialize");
        assert_eq!(json, "\"AAEC+v8=\"");
        let back: Base64Bytes = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, value);
    }

    #[test]
    fn rejects_invalid_base64() {
        assert!(serde_json::from_str::<Base64Bytes>("\"***\"").is_err());
    }
}
