//! Administration: node and cluster info, `AI.INFO`, flush, `CONFIG`, `SAVE`.

use std::collections::BTreeMap;

use redis::Value;

use super::*;
use crate::{
    error::{Error, Result},
    slot::shard_prefix,
};

impl Client {
    pub(super) fn check_address(&self, addr: &str) -> Result<()> {
        if self.t.shards().iter().any(|s| s.address == addr)
            || self.t.cfg.addresses.iter().any(|a| a == addr)
        {
            Ok(())
        } else {
            Err(Error::invalid(format!(
                "{addr} is not an address of this database ({})",
                self.t.cfg.addresses.join(",")
            )))
        }
    }

    /// `INFO EVERYTHING` of each address, as `{section: {key: value}}`.
    pub fn get_db_node_info(
        &mut self,
        addresses: &[&str],
    ) -> Result<Vec<BTreeMap<String, BTreeMap<String, String>>>> {
        addresses
            .iter()
            .map(|a| {
                self.check_address(a)?;
                let v =
                    self.t
                        .run_on(a, redis::cmd("INFO").arg("EVERYTHING"), "INFO EVERYTHING")?;
                let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
                let mut section = String::new();
                for line in text(&v).lines() {
                    if let Some(s) = line.strip_prefix("# ") {
                        section = s.trim().to_string();
                    } else if let Some((k, v)) = line.split_once(':') {
                        out.entry(section.clone())
                            .or_default()
                            .insert(k.into(), v.trim().into());
                    }
                }
                Ok(out)
            })
            .collect()
    }

    /// `CLUSTER INFO` of each address (clusters only).
    pub fn get_db_cluster_info(
        &mut self,
        addresses: &[&str],
    ) -> Result<Vec<BTreeMap<String, String>>> {
        if !self.t.clustered() {
            return Err(Error::invalid("Cannot run on non-cluster environment"));
        }
        addresses
            .iter()
            .map(|a| {
                self.check_address(a)?;
                let v = self
                    .t
                    .run_on(a, redis::cmd("CLUSTER").arg("INFO"), "CLUSTER INFO")?;
                Ok(text(&v)
                    .lines()
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.into(), v.trim().into()))
                    .collect())
            })
            .collect()
    }

    /// `AI.INFO` of a model or script on one address (`{key: value}`).
    pub fn get_ai_info(
        &mut self,
        address: &str,
        name: &str,
        reset_stat: bool,
    ) -> Result<BTreeMap<String, String>> {
        self.check_address(address)?;
        let key = self.model_key(name, false);
        let k = if self.t.clustered() {
            let shard = self
                .t
                .shards()
                .into_iter()
                .find(|s| s.address == address)
                .ok_or_else(|| Error::invalid("unknown shard"))?;
            let mut v = b"{".to_vec();
            v.extend(shard_prefix(shard.lowest_slot));
            v.extend(b"}.");
            v.extend(&key);
            v
        } else {
            key
        };
        let mut cmd = redis::cmd("AI.INFO");
        cmd.arg(&k);
        if reset_stat {
            cmd.arg("RESETSTAT");
        }
        match self.t.run_on(address, &cmd, "AI.INFO")? {
            Value::Array(items) => Ok(items
                .chunks(2)
                .filter(|c| c.len() == 2)
                .map(|c| (text(&c[0]), text(&c[1])))
                .collect()),
            _ => Ok(BTreeMap::new()),
        }
    }

    /// `FLUSHDB` on each address.
    pub fn flush_db(&mut self, addresses: &[&str]) -> Result<()> {
        for a in addresses {
            self.check_address(a)?;
            self.t.run_on(a, &redis::cmd("FLUSHDB"), "FLUSHDB")?;
        }
        Ok(())
    }

    /// `CONFIG GET expr` on one address.
    pub fn config_get(&mut self, expr: &str, address: &str) -> Result<BTreeMap<String, String>> {
        self.check_address(address)?;
        match self.t.run_on(
            address,
            redis::cmd("CONFIG").arg("GET").arg(expr),
            "CONFIG GET",
        )? {
            Value::Array(items) => Ok(items
                .chunks(2)
                .filter(|c| c.len() == 2)
                .map(|c| (text(&c[0]), text(&c[1])))
                .collect()),
            Value::Map(m) => Ok(m.iter().map(|(k, v)| (text(k), text(v))).collect()),
            _ => Ok(BTreeMap::new()),
        }
    }

    /// `CONFIG SET param value` on one address.
    pub fn config_set(&mut self, param: &str, value: &str, address: &str) -> Result<()> {
        self.check_address(address)?;
        self.t.run_on(
            address,
            redis::cmd("CONFIG").arg("SET").arg(param).arg(value),
            "CONFIG SET",
        )?;
        Ok(())
    }

    /// `SAVE` on each address.
    pub fn save(&mut self, addresses: &[&str]) -> Result<()> {
        for a in addresses {
            self.check_address(a)?;
            self.t.run_on(a, &redis::cmd("SAVE"), "SAVE")?;
        }
        Ok(())
    }
}
