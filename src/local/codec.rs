//! The byte layout of stored attribute sets: a version byte, then for each attribute its type (u64,
//! little-endian), its length (u32, little-endian) and its value. Decoding never trusts the input:
//! a damaged record is an error, never a panic.

use crate::attr::AttrMap;
use crate::error::{Error, Result};
use zeroize::Zeroizing;

const VERSION: u8 = 1;

pub fn encode(attrs: &AttrMap, mut keep: impl FnMut(u64) -> bool) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(vec![VERSION]);
    for (attr, value) in attrs {
        if !keep(*attr) {
            continue;
        }
        out.extend_from_slice(&attr.to_le_bytes());
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        out.extend_from_slice(value);
    }
    out
}

pub fn decode(bytes: &[u8]) -> Result<AttrMap> {
    let corrupt = || Error::Device("corrupt attribute record".into());
    let (version, mut rest) = bytes.split_first().ok_or_else(corrupt)?;
    if *version != VERSION {
        return Err(corrupt());
    }
    let mut attrs = AttrMap::new();
    while !rest.is_empty() {
        if rest.len() < 12 {
            return Err(corrupt());
        }
        let (head, tail) = rest.split_at(12);
        let attr = u64::from_le_bytes(head[..8].try_into().map_err(|_| corrupt())?);
        let len = u32::from_le_bytes(head[8..].try_into().map_err(|_| corrupt())?) as usize;
        if tail.len() < len {
            return Err(corrupt());
        }
        let (value, next) = tail.split_at(len);
        attrs.insert(attr, value.to_vec());
        rest = next;
    }
    Ok(attrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let mut attrs = AttrMap::new();
        attrs.insert(1, vec![1, 2, 3]);
        attrs.insert(0x100, vec![]);
        let bytes = encode(&attrs, |_| true);
        assert_eq!(decode(&bytes).ok(), Some(attrs));
        for cut in 0..bytes.len() - 1 {
            let _ = decode(&bytes[..cut]);
        }
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode(&[9]).is_err());
    }
}
