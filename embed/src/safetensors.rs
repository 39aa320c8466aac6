//! The safetensors format, read by hand (8-byte little-endian header length, a JSON header
//! naming each tensor's dtype, shape and byte range, then the data): only F32 tensors are
//! read, as all-MiniLM-L6-v2 ships them.

use std::collections::HashMap;

use crate::LoadError;

struct Entry {
    dtype: String,
    shape: Vec<usize>,
    start: usize,
    end: usize,
}

/// The tensors of one safetensors file, borrowed from its bytes.
pub(crate) struct Tensors<'a> {
    entries: HashMap<String, Entry>,
    data: &'a [u8],
}

impl<'a> Tensors<'a> {
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Self, LoadError> {
        let bad = |what: String| LoadError::Format(format!("model.safetensors: {what}"));
        let len: [u8; 8] = bytes
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("shorter than its 8-byte header length".into()))?;
        let len = usize::try_from(u64::from_le_bytes(len))
            .ok()
            .filter(|&len| len <= bytes.len() - 8)
            .ok_or_else(|| bad("header length runs past the end of the file".into()))?;
        let header: HashMap<String, serde_json::Value> =
            serde_json::from_slice(&bytes[8..8 + len]).map_err(|e| bad(format!("header: {e}")))?;
        let data = &bytes[8 + len..];
        let mut entries = HashMap::new();
        for (name, value) in header {
            if name == "__metadata__" {
                continue;
            }
            let field = |key: &str| {
                value[key]
                    .as_array()
                    .and_then(|a| {
                        a.iter()
                            .map(|v| v.as_u64().and_then(|v| usize::try_from(v).ok()))
                            .collect::<Option<Vec<usize>>>()
                    })
                    .ok_or_else(|| bad(format!("{name}: {key} is not a list of counts")))
            };
            let offsets = field("data_offsets")?;
            let [start, end] = offsets[..] else {
                return Err(bad(format!("{name}: data_offsets is not [start, end]")));
            };
            if start > end || end > data.len() {
                return Err(bad(format!("{name}: data_offsets run past the data")));
            }
            let dtype = value["dtype"]
                .as_str()
                .ok_or_else(|| bad(format!("{name}: no dtype")))?
                .to_owned();
            entries.insert(
                name.clone(),
                Entry {
                    dtype,
                    shape: field("shape")?,
                    start,
                    end,
                },
            );
        }
        Ok(Tensors { entries, data })
    }

    fn entry(&self, name: &str) -> Result<&Entry, LoadError> {
        self.entries
            .get(name)
            .ok_or_else(|| LoadError::Format(format!("model.safetensors: no tensor {name}")))
    }

    /// The first dimension of a tensor.
    pub(crate) fn rows(&self, name: &str) -> Result<usize, LoadError> {
        self.entry(name)?.shape.first().copied().ok_or_else(|| {
            LoadError::Format(format!("model.safetensors: {name} has no dimensions"))
        })
    }

    /// An F32 tensor of exactly `shape`, copied out as `f32`s.
    pub(crate) fn f32(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, LoadError> {
        let entry = self.entry(name)?;
        let bad = |what: String| LoadError::Format(format!("model.safetensors: {name}: {what}"));
        if entry.dtype != "F32" {
            return Err(bad(format!("dtype {} (only F32 is read)", entry.dtype)));
        }
        if entry.shape != shape {
            return Err(bad(format!("shape {:?}, expected {shape:?}", entry.shape)));
        }
        let count: usize = shape.iter().product();
        let bytes = &self.data[entry.start..entry.end];
        if bytes.len() != count * 4 {
            return Err(bad(format!("{} bytes for {count} values", bytes.len())));
        }
        Ok(bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }
}
