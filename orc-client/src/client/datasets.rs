//! Datasets and aggregation lists of datasets.

use redis::{Pipeline, Value};

use super::*;
use crate::{
    dataset::{COMPLETE, DataSet},
    error::{Error, Result},
};

impl Client {
    // ---- datasets ----

    pub(super) fn put_dataset_at(&mut self, ds_key: &str, ds: &DataSet) -> Result<()> {
        let fields = ds.meta_fields();
        if fields.is_empty() && ds.tensors().is_empty() {
            return Err(Error::invalid(format!(
                "dataset {} has no tensors and no metadata",
                ds.name()
            )));
        }
        let meta = format!("{ds_key}.meta");
        let mut p = Pipeline::new();
        p.cmd("DEL").arg(&meta);
        if !fields.is_empty() {
            let c = p.cmd("HMSET").arg(&meta);
            for (k, v) in &fields {
                c.arg(k).arg(v.as_slice());
            }
        }
        for (n, t) in ds.tensors() {
            p.add_command(Self::tensorset(format!("{ds_key}.{n}").as_bytes(), t));
        }
        p.cmd("HSET").arg(&meta).arg(COMPLETE).arg("1");
        let replies = self.t.pipeline(meta.as_bytes(), &p, "put_dataset")?;
        pipeline_errors("put_dataset", &replies)
    }

    /// Store a dataset: its metadata hash, its tensors, then the `.COMPLETE` mark.
    pub fn put_dataset(&mut self, ds: &DataSet) -> Result<()> {
        let key = self.dataset_key(ds.name(), true);
        self.put_dataset_at(&key, ds)
    }

    /// Read a dataset by its full key (`P.{name}`).
    pub(super) fn get_dataset_at(&mut self, ds_key: &str) -> Result<DataSet> {
        let name = match (ds_key.find('{'), ds_key.rfind('}')) {
            (Some(a), Some(b)) if b > a => ds_key[a + 1..b].to_string(),
            _ => ds_key.to_string(),
        };
        let meta = format!("{ds_key}.meta");
        let v = self.run(meta.as_bytes(), redis::cmd("HGETALL").arg(&meta), "HGETALL")?;
        let pairs: Vec<(String, Vec<u8>)> = match v {
            Value::Array(items) => items
                .chunks(2)
                .filter_map(|c| Some((text(&c[0]), bytes(c.get(1)?)?)))
                .collect(),
            Value::Map(m) => m
                .iter()
                .filter_map(|(k, v)| Some((text(k), bytes(v)?)))
                .collect(),
            _ => Vec::new(),
        };
        if pairs.is_empty() {
            return Err(Error::NotFound {
                what: "dataset",
                name,
            });
        }
        let (mut ds, tensor_names) = DataSet::from_meta(&name, pairs)?;
        if !tensor_names.is_empty() {
            let mut p = Pipeline::new();
            for t in &tensor_names {
                p.cmd("AI.TENSORGET")
                    .arg(format!("{ds_key}.{t}"))
                    .arg("META")
                    .arg("BLOB");
            }
            let replies = self.t.pipeline(meta.as_bytes(), &p, "get_dataset")?;
            pipeline_errors("get_dataset", &replies)?;
            for (t, r) in tensor_names.into_iter().zip(replies) {
                let tensor = parse_tensor(&t, r)?;
                ds.insert_tensor(t, tensor);
            }
        }
        Ok(ds)
    }

    /// Read a dataset.
    pub fn get_dataset(&mut self, name: &str) -> Result<DataSet> {
        check(name, "dataset")?;
        let key = self.dataset_key(name, false);
        self.get_dataset_at(&key)
    }

    /// Delete a dataset (metadata and tensors).
    pub fn delete_dataset(&mut self, name: &str) -> Result<()> {
        let ds = self.get_dataset(name)?;
        let key = self.dataset_key(name, false);
        let mut keys = vec![format!("{key}.meta").into_bytes()];
        keys.extend(
            ds.tensor_names()
                .iter()
                .map(|t| format!("{key}.{t}").into_bytes()),
        );
        let mut cmd = redis::cmd("DEL");
        for k in &keys {
            cmd.arg(k.as_slice());
        }
        self.run(&keys[0], &cmd, "DEL")?;
        Ok(())
    }

    /// Copy a dataset under a new name.
    pub fn copy_dataset(&mut self, src: &str, dest: &str) -> Result<()> {
        check(dest, "dataset")?;
        let mut ds = self.get_dataset(src)?;
        ds.set_name(dest)?;
        self.put_dataset(&ds)
    }

    /// Rename a dataset (copy, then delete).
    pub fn rename_dataset(&mut self, old: &str, new: &str) -> Result<()> {
        self.copy_dataset(old, new)?;
        self.delete_dataset(old)
    }

    /// Whether a complete dataset exists.
    pub fn dataset_exists(&mut self, name: &str) -> Result<bool> {
        check(name, "dataset")?;
        let meta = format!("{}.meta", self.dataset_key(name, false));
        Ok(matches!(
            self.run(
                meta.as_bytes(),
                redis::cmd("HEXISTS").arg(&meta).arg(COMPLETE),
                "HEXISTS"
            )?,
            Value::Int(1)
        ))
    }

    /// Check for a complete dataset `tries` times, `interval_ms` apart.
    pub fn poll_dataset(&mut self, name: &str, interval_ms: u64, tries: u64) -> Result<bool> {
        self.poll(interval_ms, tries, |c| c.dataset_exists(name))
    }

    // ---- aggregation lists ----

    /// Append a dataset (already put) to a list.
    pub fn append_to_list(&mut self, list: &str, ds: &DataSet) -> Result<()> {
        check(list, "list")?;
        let key = self.list_key(list, true);
        let entry = self.dataset_key(ds.name(), true);
        self.run(&key, redis::cmd("RPUSH").arg(&key).arg(&entry), "RPUSH")?;
        Ok(())
    }

    /// Delete a list (not its datasets).
    pub fn delete_list(&mut self, list: &str) -> Result<()> {
        check(list, "list")?;
        let key = self.list_key(list, false);
        self.run(&key, redis::cmd("DEL").arg(&key), "DEL")?;
        Ok(())
    }

    pub(super) fn list_entries(&mut self, key: &[u8], start: i64, end: i64) -> Result<Vec<String>> {
        match self.run(
            key,
            redis::cmd("LRANGE").arg(key).arg(start).arg(end),
            "LRANGE",
        )? {
            Value::Array(items) => Ok(items.iter().map(text).collect()),
            _ => Ok(Vec::new()),
        }
    }

    /// Copy a list.
    pub fn copy_list(&mut self, src: &str, dest: &str) -> Result<()> {
        check(src, "list")?;
        check(dest, "list")?;
        let (from, to) = (self.list_key(src, false), self.list_key(dest, true));
        let entries = self.list_entries(&from, 0, -1)?;
        if entries.is_empty() {
            return Err(Error::NotFound {
                what: "aggregation list",
                name: src.into(),
            });
        }
        self.run(&to, redis::cmd("DEL").arg(&to), "DEL")?;
        let mut cmd = redis::cmd("RPUSH");
        cmd.arg(&to);
        for e in &entries {
            cmd.arg(e);
        }
        self.run(&to, &cmd, "RPUSH")?;
        Ok(())
    }

    /// Rename a list (copy, then delete).
    pub fn rename_list(&mut self, src: &str, dest: &str) -> Result<()> {
        self.copy_list(src, dest)?;
        self.delete_list(src)
    }

    /// The number of datasets in a list.
    pub fn get_list_length(&mut self, list: &str) -> Result<u64> {
        check(list, "list")?;
        let key = self.list_key(list, false);
        Ok(
            match self.run(&key, redis::cmd("LLEN").arg(&key), "LLEN")? {
                Value::Int(n) => n.max(0) as u64,
                _ => 0,
            },
        )
    }

    /// Wait until a list has exactly `length` entries.
    pub fn poll_list_length(
        &mut self,
        list: &str,
        length: u64,
        interval_ms: u64,
        tries: u64,
    ) -> Result<bool> {
        self.poll(interval_ms, tries, |c| {
            Ok(c.get_list_length(list)? == length)
        })
    }

    /// Wait until a list has at least `length` entries.
    pub fn poll_list_length_gte(
        &mut self,
        list: &str,
        length: u64,
        interval_ms: u64,
        tries: u64,
    ) -> Result<bool> {
        self.poll(interval_ms, tries, |c| {
            Ok(c.get_list_length(list)? >= length)
        })
    }

    /// Wait until a list has at most `length` entries.
    pub fn poll_list_length_lte(
        &mut self,
        list: &str,
        length: u64,
        interval_ms: u64,
        tries: u64,
    ) -> Result<bool> {
        self.poll(interval_ms, tries, |c| {
            Ok(c.get_list_length(list)? <= length)
        })
    }

    /// Every dataset of a list.
    pub fn get_datasets_from_list(&mut self, list: &str) -> Result<Vec<DataSet>> {
        self.get_dataset_list_range(list, 0, -1)
    }

    /// The datasets of a list between `start` and `end` (inclusive; negative counts from the end).
    pub fn get_dataset_list_range(
        &mut self,
        list: &str,
        start: i64,
        end: i64,
    ) -> Result<Vec<DataSet>> {
        check(list, "list")?;
        let key = self.list_key(list, false);
        let entries = self.list_entries(&key, start, end)?;
        entries.iter().map(|e| self.get_dataset_at(e)).collect()
    }
}
