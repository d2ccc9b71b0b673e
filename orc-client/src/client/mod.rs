//! The client: SmartRedis's API, byte-compatible on the wire and in the database. This
//! file holds the client itself (connection, key prefixes, plumbing, shared helpers); one
//! file per subject holds its commands.

mod admin;
mod datasets;
mod models;
mod scripts;
mod tensors;

pub use models::ModelOptions;

use std::time::Duration;

use redis::{Cmd, Value};

use crate::{
    config::Config,
    error::{Error, Result},
    tensor::{Tensor, TensorType, element_count},
    transport::{Shard, Transport},
};

/// Which keys get the ensemble prefixes.
#[derive(Debug, Clone, Copy)]
struct PrefixFlags {
    tensor: bool,
    dataset: bool,
    list: bool,
    model: bool,
}

/// A SmartRedis-compatible client.
pub struct Client {
    t: Transport,
    flags: PrefixFlags,
    source: Option<String>,
    chunk_size: Option<u64>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.t.cfg)
            .finish_non_exhaustive()
    }
}

fn check(name: &str, what: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid(format!("the {what} name is empty")));
    }
    Ok(())
}

fn bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b.clone()),
        Value::SimpleString(s) => Some(s.clone().into_bytes()),
        Value::Okay => Some(b"OK".to_vec()),
        Value::Int(i) => Some(i.to_string().into_bytes()),
        Value::Double(d) => Some(d.to_string().into_bytes()),
        _ => None,
    }
}

fn text(v: &Value) -> String {
    bytes(v)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn pipeline_errors(name: &str, replies: &[Value]) -> Result<()> {
    for r in replies {
        if let Value::ServerError(e) = r {
            let message = format!("{} {}", e.code(), e.details().unwrap_or_default());
            if message.contains("unknown command") && message.contains("AI.") {
                return Err(Error::ModuleMissing {
                    command: name.into(),
                    message,
                });
            }
            return Err(Error::Server {
                command: name.into(),
                message,
            });
        }
    }
    Ok(())
}

/// Parse an `AI.TENSORGET key META BLOB` reply.
fn parse_tensor(name: &str, v: Value) -> Result<Tensor> {
    let bad = |m: &str| Error::Protocol {
        command: format!("AI.TENSORGET {name}"),
        message: m.into(),
    };
    let Value::Array(mut items) = v else {
        return Err(bad("not an array"));
    };
    if items.len() < 6 {
        return Err(bad("fewer than 6 elements"));
    }
    let dtype = TensorType::from_wire(&bytes(&items[1]).unwrap_or_default())
        .ok_or_else(|| bad("an unknown tensor type"))?;
    let Value::Array(shape) = &items[3] else {
        return Err(bad("the shape is not an array"));
    };
    let dims: Vec<usize> = shape
        .iter()
        .map(|d| {
            if let Value::Int(i) = d {
                *i as usize
            } else {
                0
            }
        })
        .collect();
    // Move the blob out of the reply instead of copying it.
    let data = match std::mem::replace(&mut items[5], Value::Nil) {
        Value::BulkString(b) => b,
        other => bytes(&other).ok_or_else(|| bad("no blob"))?,
    };
    if element_count(&dims).map(|n| n * dtype.size()).ok() != Some(data.len()) {
        return Err(bad("the blob does not match the shape"));
    }
    Ok(Tensor { dtype, dims, data })
}

impl Client {
    /// Connect with `config`.
    pub fn new(config: Config) -> Result<Client> {
        let t = Transport::connect(config)?;
        Ok(Client {
            t,
            flags: PrefixFlags {
                tensor: true,
                dataset: true,
                list: true,
                model: false,
            },
            source: None,
            chunk_size: None,
        })
    }

    /// Connect using the SmartRedis environment (`SSDB`, `SR_DB_TYPE`, ...).
    pub fn from_env() -> Result<Client> {
        Client::new(Config::from_env("")?)
    }

    /// Connect to database `db_identifier` (variables `SSDB_<id>`, ... as `orc run` sets).
    pub fn from_env_suffix(db_identifier: &str) -> Result<Client> {
        Client::new(Config::from_env(db_identifier)?)
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.t.cfg
    }

    /// Whether the database is a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.t.clustered()
    }

    /// The shards.
    pub fn shards(&self) -> Vec<Shard> {
        self.t.shards()
    }

    // ---- prefixes ----

    fn put_prefix(&self) -> Option<&str> {
        self.t.cfg.key_out.as_deref()
    }

    fn get_prefix(&self) -> Option<&str> {
        self.source
            .as_deref()
            .or(self.t.cfg.keys_in.first().map(String::as_str))
    }

    fn prefixed(prefix: Option<&str>, on: bool, name: &str) -> Vec<u8> {
        match prefix.filter(|_| on) {
            Some(p) => format!("{p}.{name}").into_bytes(),
            None => name.as_bytes().to_vec(),
        }
    }

    fn tensor_key(&self, name: &str, put: bool) -> Vec<u8> {
        Self::prefixed(
            if put {
                self.put_prefix()
            } else {
                self.get_prefix()
            },
            self.flags.tensor,
            name,
        )
    }

    /// `P.{name}`: the key a dataset is known by (and what lists hold).
    fn dataset_key(&self, name: &str, put: bool) -> String {
        let p = if put {
            self.put_prefix()
        } else {
            self.get_prefix()
        };
        match p.filter(|_| self.flags.dataset) {
            Some(p) => format!("{p}.{{{name}}}"),
            None => format!("{{{name}}}"),
        }
    }

    fn list_key(&self, name: &str, put: bool) -> Vec<u8> {
        Self::prefixed(
            if put {
                self.put_prefix()
            } else {
                self.get_prefix()
            },
            self.flags.list,
            name,
        )
    }

    fn model_key(&self, name: &str, put: bool) -> Vec<u8> {
        Self::prefixed(
            if put {
                self.put_prefix()
            } else {
                self.get_prefix()
            },
            self.flags.model,
            name,
        )
    }

    /// Read from another `SSKEYIN` entry.
    pub fn set_data_source(&mut self, source: &str) -> Result<()> {
        if !self.t.cfg.keys_in.iter().any(|k| k == source) {
            return Err(Error::invalid(format!(
                "data source {source} could not be found during client initialization (SSKEYIN)"
            )));
        }
        self.source = Some(source.into());
        Ok(())
    }

    /// Prefix tensor keys (default on).
    pub fn use_tensor_ensemble_prefix(&mut self, on: bool) {
        self.flags.tensor = on;
    }

    /// Prefix dataset keys (default on).
    pub fn use_dataset_ensemble_prefix(&mut self, on: bool) {
        self.flags.dataset = on;
    }

    /// Prefix aggregation-list keys (default on).
    pub fn use_list_ensemble_prefix(&mut self, on: bool) {
        self.flags.list = on;
    }

    /// Prefix model and script keys (default off).
    pub fn use_model_ensemble_prefix(&mut self, on: bool) {
        self.flags.model = on;
    }

    // ---- plumbing ----

    fn run(&mut self, key: &[u8], cmd: &Cmd, name: &str) -> Result<Value> {
        self.t.run(Some(key), cmd, name)
    }

    fn exists(&mut self, key: &[u8]) -> Result<bool> {
        Ok(
            matches!(self.run(key, redis::cmd("EXISTS").arg(key), "EXISTS")?, Value::Int(n) if n > 0),
        )
    }

    fn delete_keys(&mut self, keys: &[Vec<u8>]) -> Result<()> {
        let Some(first) = keys.first() else {
            return Ok(());
        };
        let verb = if self.t.clustered() { "UNLINK" } else { "DEL" };
        let mut cmd = redis::cmd(verb);
        for k in keys {
            cmd.arg(k.as_slice());
        }
        self.run(first, &cmd, verb)?;
        Ok(())
    }

    fn poll(
        &mut self,
        interval_ms: u64,
        tries: u64,
        mut f: impl FnMut(&mut Self) -> Result<bool>,
    ) -> Result<bool> {
        for i in 0..tries {
            if f(self)? {
                return Ok(true);
            }
            if i + 1 < tries {
                std::thread::sleep(Duration::from_millis(interval_ms));
            }
        }
        Ok(false)
    }
}
