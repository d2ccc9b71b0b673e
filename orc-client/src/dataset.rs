//! Datasets: named groups of tensors with scalar and string metadata, stored exactly as
//! SmartRedis stores them (a `P.{name}.meta` hash in SmartRedis's binary field encoding, and
//! one tensor per `P.{name}.<tensor>` key).

use crate::{
    error::{Error, Result},
    tensor::Tensor,
};

/// The metadata field holding the tensor names.
pub(crate) const TENSOR_NAMES: &str = ".tensor_names";
/// The field that marks a complete dataset.
pub(crate) const COMPLETE: &str = ".COMPLETE";

/// Metadata value types (SmartRedis's `SRMetaDataType` ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaType {
    /// `f64`.
    Double = 1,
    /// `f32`.
    Float = 2,
    /// `i32`.
    Int32 = 3,
    /// `i64`.
    Int64 = 4,
    /// `u32`.
    Uint32 = 5,
    /// `u64`.
    Uint64 = 6,
    /// Strings.
    String = 7,
}

impl MetaType {
    fn from_id(id: u8) -> Option<MetaType> {
        [
            MetaType::Double,
            MetaType::Float,
            MetaType::Int32,
            MetaType::Int64,
            MetaType::Uint32,
            MetaType::Uint64,
            MetaType::String,
        ]
        .into_iter()
        .find(|t| *t as u8 == id)
    }

    fn size(self) -> usize {
        match self {
            MetaType::Double | MetaType::Int64 | MetaType::Uint64 => 8,
            MetaType::Float | MetaType::Int32 | MetaType::Uint32 => 4,
            MetaType::String => 0,
        }
    }
}

/// Rust types usable as metadata scalars.
pub trait MetaScalar: Copy + 'static {
    /// The matching metadata type.
    const TYPE: MetaType;
    /// Little-endian bytes.
    fn write(self, out: &mut Vec<u8>);
    /// From little-endian bytes.
    fn read(b: &[u8]) -> Self;
}

macro_rules! scalar {
    ($t:ty, $v:ident) => {
        impl MetaScalar for $t {
            const TYPE: MetaType = MetaType::$v;
            fn write(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn read(b: &[u8]) -> Self {
                let mut a = [0u8; std::mem::size_of::<$t>()];
                a.copy_from_slice(b);
                <$t>::from_le_bytes(a)
            }
        }
    };
}
scalar!(f64, Double);
scalar!(f32, Float);
scalar!(i32, Int32);
scalar!(i64, Int64);
scalar!(u32, Uint32);
scalar!(u64, Uint64);

/// One metadata field: its type and encoded values (without the type byte).
#[derive(Debug, Clone, PartialEq)]
struct Field {
    ty: MetaType,
    body: Vec<u8>,
}

impl Field {
    fn encode(&self) -> Vec<u8> {
        let mut v = vec![self.ty as u8];
        v.extend_from_slice(&self.body);
        v
    }

    fn decode(bytes: &[u8]) -> Result<Field> {
        let (&id, body) = bytes
            .split_first()
            .ok_or_else(|| Error::invalid("an empty metadata field"))?;
        let ty = MetaType::from_id(id)
            .ok_or_else(|| Error::invalid(format!("unknown metadata type id {id}")))?;
        if ty != MetaType::String && body.len() % ty.size() != 0 {
            return Err(Error::invalid(
                "a metadata field whose length does not fit its type",
            ));
        }
        Ok(Field {
            ty,
            body: body.to_vec(),
        })
    }

    fn strings(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut b = self.body.as_slice();
        while !b.is_empty() {
            if b.len() < 8 {
                return Err(Error::invalid("a truncated string metadata field"));
            }
            let n = u64::from_le_bytes(b[..8].try_into().unwrap_or_default()) as usize;
            let s = b
                .get(8..8 + n)
                .ok_or_else(|| Error::invalid("a truncated string metadata field"))?;
            out.push(String::from_utf8_lossy(s).into_owned());
            b = &b[8 + n..];
        }
        Ok(out)
    }

    fn push_string(&mut self, s: &str) {
        self.body.extend_from_slice(&(s.len() as u64).to_le_bytes());
        self.body.extend_from_slice(s.as_bytes());
    }
}

/// A dataset.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DataSet {
    name: String,
    tensors: Vec<(String, Tensor)>,
    meta: Vec<(String, Field)>,
}

fn check_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid(format!("the {what} name is empty")));
    }
    Ok(())
}

impl DataSet {
    /// An empty dataset called `name`.
    pub fn new(name: &str) -> Result<DataSet> {
        check_name("dataset", name)?;
        Ok(DataSet {
            name: name.into(),
            ..DataSet::default()
        })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Rename it (before putting it).
    pub fn set_name(&mut self, name: &str) -> Result<()> {
        check_name("dataset", name)?;
        self.name = name.into();
        Ok(())
    }

    /// Add (or replace) a tensor.
    pub fn add_tensor(&mut self, name: &str, tensor: Tensor) -> Result<()> {
        check_name("tensor", name)?;
        match self.tensors.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = tensor,
            None => self.tensors.push((name.into(), tensor)),
        }
        Ok(())
    }

    /// A tensor by name.
    pub fn get_tensor(&self, name: &str) -> Result<&Tensor> {
        self.tensors
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t)
            .ok_or_else(|| Error::NotFound {
                what: "tensor in the dataset",
                name: name.into(),
            })
    }

    /// Tensor names, in the order they were added.
    pub fn tensor_names(&self) -> Vec<String> {
        self.tensors.iter().map(|(n, _)| n.clone()).collect()
    }

    fn field_mut(&mut self, name: &str, ty: MetaType) -> Result<&mut Field> {
        check_name("metadata field", name)?;
        if name == TENSOR_NAMES || name == COMPLETE {
            return Err(Error::invalid(format!("`{name}` is reserved")));
        }
        if let Some(i) = self.meta.iter().position(|(n, _)| n == name) {
            let f = &mut self.meta[i].1;
            if f.ty != ty {
                return Err(Error::invalid(format!(
                    "metadata field `{name}` holds {:?} values, not {ty:?}",
                    f.ty
                )));
            }
            return Ok(f);
        }
        self.meta.push((
            name.into(),
            Field {
                ty,
                body: Vec::new(),
            },
        ));
        Ok(&mut self.meta.last_mut().expect("just pushed").1)
    }

    /// Append a scalar to a metadata field (created on first use; its type is fixed then).
    pub fn add_meta_scalar<T: MetaScalar>(&mut self, name: &str, value: T) -> Result<()> {
        value.write(&mut self.field_mut(name, T::TYPE)?.body);
        Ok(())
    }

    /// Append a string to a metadata field.
    pub fn add_meta_string(&mut self, name: &str, value: &str) -> Result<()> {
        self.field_mut(name, MetaType::String)?.push_string(value);
        Ok(())
    }

    fn field(&self, name: &str) -> Result<&Field> {
        self.meta
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, f)| f)
            .ok_or_else(|| Error::NotFound {
                what: "metadata field",
                name: name.into(),
            })
    }

    /// The scalars of a field; the type must match.
    pub fn get_meta_scalars<T: MetaScalar>(&self, name: &str) -> Result<Vec<T>> {
        let f = self.field(name)?;
        if f.ty != T::TYPE {
            return Err(Error::invalid(format!(
                "metadata field `{name}` holds {:?} values, not {:?}",
                f.ty,
                T::TYPE
            )));
        }
        Ok(f.body.chunks_exact(f.ty.size()).map(T::read).collect())
    }

    /// The strings of a field.
    pub fn get_meta_strings(&self, name: &str) -> Result<Vec<String>> {
        let f = self.field(name)?;
        if f.ty != MetaType::String {
            return Err(Error::invalid(format!(
                "metadata field `{name}` holds {:?} values, not strings",
                f.ty
            )));
        }
        f.strings()
    }

    /// Metadata field names (the internal `.tensor_names` is hidden).
    pub fn get_metadata_field_names(&self) -> Vec<String> {
        self.meta.iter().map(|(n, _)| n.clone()).collect()
    }

    /// The type of a metadata field.
    pub fn get_metadata_field_type(&self, name: &str) -> Result<MetaType> {
        Ok(self.field(name)?.ty)
    }

    /// Whether a metadata field exists.
    pub fn has_field(&self, name: &str) -> bool {
        self.meta.iter().any(|(n, _)| n == name)
    }

    /// Remove a metadata field.
    pub fn clear_field(&mut self, name: &str) {
        self.meta.retain(|(n, _)| n != name);
    }

    /// The `HMSET` field/value pairs of the `.meta` hash (`.tensor_names` included).
    pub(crate) fn meta_fields(&self) -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<(String, Vec<u8>)> = self
            .meta
            .iter()
            .map(|(n, f)| (n.clone(), f.encode()))
            .collect();
        if !self.tensors.is_empty() {
            let mut names = Field {
                ty: MetaType::String,
                body: Vec::new(),
            };
            for (n, _) in &self.tensors {
                names.push_string(n);
            }
            out.push((TENSOR_NAMES.into(), names.encode()));
        }
        out
    }

    /// The tensors to store.
    pub(crate) fn tensors(&self) -> &[(String, Tensor)] {
        &self.tensors
    }

    /// Rebuild a dataset (without tensors) from its `.meta` hash; returns it and the
    /// tensor names to fetch.
    pub(crate) fn from_meta(
        name: &str,
        fields: Vec<(String, Vec<u8>)>,
    ) -> Result<(DataSet, Vec<String>)> {
        let mut ds = DataSet::new(name)?;
        let mut tensor_names = Vec::new();
        for (k, v) in fields {
            if k == COMPLETE {
                continue;
            }
            let f = Field::decode(&v)?;
            if k == TENSOR_NAMES {
                tensor_names = f.strings()?;
            } else {
                ds.meta.push((k, f));
            }
        }
        Ok((ds, tensor_names))
    }

    pub(crate) fn insert_tensor(&mut self, name: String, t: Tensor) {
        self.tensors.push((name, t));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_bytes_match_smartredis() {
        let mut ds = DataSet::new("ds1").unwrap();
        ds.add_meta_scalar("sc", 7i64).unwrap();
        ds.add_meta_scalar("fl", 2.5f64).unwrap();
        ds.add_meta_scalar("i", 3i32).unwrap();
        ds.add_meta_string("st", "hello").unwrap();
        ds.add_meta_string("st", "world").unwrap();
        let f: Vec<(String, Vec<u8>)> = ds.meta_fields();
        let get = |k: &str| f.iter().find(|(n, _)| n == k).unwrap().1.clone();
        // Observed from SmartRedis 0.6.1.
        assert_eq!(get("sc"), b"\x04\x07\x00\x00\x00\x00\x00\x00\x00");
        assert_eq!(get("fl"), b"\x01\x00\x00\x00\x00\x00\x00\x04@");
        assert_eq!(get("i"), b"\x03\x03\x00\x00\x00");
        assert_eq!(
            get("st"),
            b"\x07\x05\x00\x00\x00\x00\x00\x00\x00hello\x05\x00\x00\x00\x00\x00\x00\x00world"
        );
        ds.add_tensor(
            "a",
            Tensor::from_slice(&[1u8], &[1], crate::MemoryLayout::RowMajor).unwrap(),
        )
        .unwrap();
        ds.add_tensor(
            "b",
            Tensor::from_slice(&[1u8], &[1], crate::MemoryLayout::RowMajor).unwrap(),
        )
        .unwrap();
        let f = ds.meta_fields();
        assert_eq!(
            f.iter().find(|(n, _)| n == TENSOR_NAMES).unwrap().1,
            b"\x07\x01\x00\x00\x00\x00\x00\x00\x00a\x01\x00\x00\x00\x00\x00\x00\x00b"
        );
        let (back, names) = DataSet::from_meta("ds1", f).unwrap();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(back.get_meta_scalars::<i64>("sc").unwrap(), [7]);
        assert_eq!(back.get_meta_strings("st").unwrap(), ["hello", "world"]);
        assert!(back.get_meta_scalars::<f32>("sc").is_err());
        assert!(
            ds.add_meta_scalar("sc", 1.0f32).is_err(),
            "a field keeps its type"
        );
        assert!(DataSet::new("").is_err());
    }
}
