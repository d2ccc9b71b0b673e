//! Connections, cluster routing and retries, shared by every client call.
//!
//! Unlike SmartRedis (which reads the slot map once and turns MOVED into an error), the
//! slot map is refreshed whenever a shard answers MOVED, MOVED and ASK are followed, and
//! TRYAGAIN, CLUSTERDOWN, LOADING and lost connections are retried every
//! `command_interval` until `command_timeout` passes. A resharded cluster, or a shard that
//! goes away and comes back, does not break a running client.
//!
//! What is retried, and what is not:
//! - a command that never reached a server (no connection, connection refused) or that the
//!   server refused without running it (`TRYAGAIN`, `CLUSTERDOWN`, `LOADING`, `MASTERDOWN`,
//!   `BUSY`) is retried;
//! - a command whose reply was lost (the connection dropped, or no reply within the read
//!   timeout) is retried only when running it twice does no harm; one that is not safe to
//!   repeat ([`idempotent`]: `RPUSH` of `append_to_list`, `RENAME`, counters, pops) fails
//!   with [`Error::Uncertain`] instead, since it may have run.
//!
//! Every read has a timeout (a hung shard never hangs the client): `socket_timeout` when
//! set, else the command timeout; model, script and DAG runs wait up to the model timeout.
//! One reply may take at most [`Config::max_reply_size`] bytes of memory and nest 32 deep
//! (read by [`crate::resp`]: a larger claim is refused before anything is reserved, and the
//! connection is closed); credentials go only to configured addresses and the nodes of the
//! cluster's slot map: a redirection elsewhere is refused.

use std::io::Write as _;
use std::time::{Duration, Instant};

use redis::{Cmd, ConnectionLike, Pipeline, Value};

use crate::{
    config::Config,
    connection::{Connection, Dialer},
    error::{Error, Result},
    slot::hash_slot,
};

/// Most redirections followed for one command.
const MAX_REDIRECTS: usize = 16;

struct Node {
    addr: String,
    con: Option<Connection>,
    /// When `con` last answered (or was opened).
    used: Instant,
}

/// How long a kept connection may stay unused before a command that is not safe to repeat
/// checks it first (see [`Transport::run_routed`]).
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// A shard of the database as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// `host:port`.
    pub address: String,
    /// Its lowest hash slot (0 for a standalone server).
    pub lowest_slot: u16,
}

pub(crate) struct Transport {
    pub(crate) cfg: Config,
    dialer: Dialer,
    nodes: Vec<Node>,
    /// `(first, last, node)` slot ranges, sorted; empty for a standalone server.
    slots: Vec<(u16, u16, usize)>,
}

enum Failure {
    Moved(String),
    Ask(String),
    /// A transient failure; `may_have_run` when the command may have reached the server.
    Retry {
        message: String,
        may_have_run: bool,
    },
    Fatal(redis::RedisError),
}

/// Whether running the command named `word` twice leaves the same result as running it
/// once: those that are not are never re-sent after a lost reply.
pub(crate) fn idempotent(word: &[u8]) -> bool {
    const NOT: [&str; 26] = [
        "RPUSH",
        "LPUSH",
        "RPUSHX",
        "LPUSHX",
        "LINSERT",
        "LPOP",
        "RPOP",
        "LMOVE",
        "BLMOVE",
        "RPOPLPUSH",
        "BRPOPLPUSH",
        "LMPOP",
        "INCR",
        "INCRBY",
        "INCRBYFLOAT",
        "DECR",
        "DECRBY",
        "HINCRBY",
        "HINCRBYFLOAT",
        "ZINCRBY",
        "APPEND",
        "SETRANGE",
        "RENAME",
        "RENAMENX",
        "GETDEL",
        "XADD",
    ];
    !NOT.iter().any(|n| n.as_bytes().eq_ignore_ascii_case(word))
}

/// Whether the command named `word` may run as long as a model does.
fn long_running(word: &[u8]) -> bool {
    const LONG: [&str; 11] = [
        "AI.MODELEXECUTE",
        "AI.MODELRUN",
        "AI.SCRIPTEXECUTE",
        "AI.SCRIPTRUN",
        "AI.DAGEXECUTE",
        "AI.DAGEXECUTE_RO",
        "AI.DAGRUN",
        "AI.DAGRUN_RO",
        "AI.MODELSTORE",
        "AI.MODELSET",
        "SAVE",
    ];
    LONG.iter().any(|n| n.as_bytes().eq_ignore_ascii_case(word))
}

/// Whether the command named `word` only reads: the others are followed by `WAIT` when
/// the configuration asks for replicas ([`Config::wait_replicas`]).
fn read_only(word: &[u8]) -> bool {
    const READ: [&str; 21] = [
        "GET",
        "EXISTS",
        "HEXISTS",
        "HGET",
        "HGETALL",
        "LLEN",
        "LRANGE",
        "LINDEX",
        "TYPE",
        "SCAN",
        "KEYS",
        "DBSIZE",
        "PING",
        "INFO",
        "CLUSTER",
        "CONFIG",
        "AI.TENSORGET",
        "AI.MODELGET",
        "AI.SCRIPTGET",
        "AI.INFO",
        "AI.CONFIG",
    ];
    READ.iter().any(|n| n.as_bytes().eq_ignore_ascii_case(word))
}

/// What the transport must know of a command before sending it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Kind {
    /// Safe to send again after a lost reply.
    pub(crate) idempotent: bool,
    /// May take as long as a model run.
    pub(crate) long: bool,
    /// Changes data (replicas should have it).
    pub(crate) write: bool,
}

impl Kind {
    /// The kind of the commands whose first words are `words` (all of a pipeline).
    pub(crate) fn of<'a>(words: impl IntoIterator<Item = &'a [u8]>) -> Kind {
        let mut k = Kind {
            idempotent: true,
            long: false,
            write: false,
        };
        for w in words {
            k.idempotent &= idempotent(w);
            k.long |= long_running(w);
            k.write |= !read_only(w);
        }
        k
    }

    fn of_cmd(cmd: &Cmd) -> Kind {
        Kind::of(cmd.args_iter().take(1).filter_map(|a| match a {
            redis::Arg::Simple(b) => Some(b),
            _ => None,
        }))
    }
}

fn classify(e: redis::RedisError) -> Failure {
    if let Some((addr, _)) = e.redirect_node() {
        let addr = addr.to_string();
        return if e.code() == Some("ASK") {
            Failure::Ask(addr)
        } else {
            Failure::Moved(addr)
        };
    }
    if matches!(
        e.code(),
        Some("TRYAGAIN" | "CLUSTERDOWN" | "LOADING" | "MASTERDOWN" | "BUSY")
    ) || e.is_connection_refusal()
    {
        return Failure::Retry {
            message: e.to_string(),
            may_have_run: false,
        };
    }
    if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() {
        return Failure::Retry {
            message: e.to_string(),
            may_have_run: true,
        };
    }
    Failure::Fatal(e)
}

fn server_error(command: &str, e: &redis::RedisError) -> Error {
    if e.kind() == redis::ErrorKind::Parse {
        // A reply refused by the reader (too large, too deep, not RESP).
        return Error::Protocol {
            command: command.into(),
            message: e.detail().map_or_else(|| e.to_string(), str::to_owned),
        };
    }
    let message = match (e.code(), e.detail()) {
        (Some(c), Some(d)) => format!("{c} {d}"),
        _ => e.to_string(),
    };
    if message.contains("unknown command 'AI.") || message.contains("unknown command `AI.") {
        return Error::ModuleMissing {
            command: command.into(),
            message,
        };
    }
    Error::Server {
        command: command.into(),
        message,
    }
}

impl Transport {
    /// Connect, retrying every `connect_interval` until `connect_timeout`.
    pub(crate) fn connect(cfg: Config) -> Result<Self> {
        let deadline = Instant::now() + cfg.connect_timeout;
        let dialer = Dialer::new(&cfg).map_err(Error::Config)?;
        let mut t = Transport {
            nodes: Vec::new(),
            slots: Vec::new(),
            cfg,
            dialer,
        };
        loop {
            match t.discover() {
                Ok(()) => return Ok(t),
                Err(e @ Error::Config(_)) => return Err(e),
                Err(e) if Instant::now() >= deadline => {
                    return Err(Error::Connection {
                        addresses: t.cfg.addresses.join(","),
                        seconds: t.cfg.connect_timeout.as_secs(),
                        message: e.to_string(),
                    });
                }
                Err(e) => {
                    tracing::debug!("connecting: {e}; retrying");
                    std::thread::sleep(t.cfg.connect_interval);
                }
            }
        }
    }

    fn open(&self, addr: &str) -> Result<Connection> {
        if addr.strip_prefix("unix://").is_none() && !addr.contains(':') {
            return Err(Error::Config(format!("address {addr}: not host:port")));
        }
        let timeout = self.cfg.connect_interval.max(Duration::from_millis(200));
        let mut con = Connection::open(&self.dialer, addr, timeout).map_err(|e| Error::Server {
            command: format!("connect {addr}"),
            message: e.to_string(),
        })?;
        // Bounded from the start (the handshake, slot-map reads); each command sets its own.
        con.set_read_timeout(Some(self.cfg.io_timeout(false))).ok();
        con.set_write_timeout(Some(self.cfg.io_timeout(false))).ok();
        Ok(con)
    }

    /// Whether credentials may go to `addr`: a configured address, or a node of the slot
    /// map read from one.
    fn known(&self, addr: &str) -> bool {
        self.cfg.addresses.iter().any(|a| a == addr)
            || self
                .slots
                .iter()
                .any(|(_, _, n)| self.nodes[*n].addr == addr)
    }

    /// Find the nodes (and, for a cluster, the slot map).
    fn discover(&mut self) -> Result<()> {
        if !self.cfg.clustered {
            let addr = self.cfg.addresses[0].clone();
            let mut con = self.open(&addr)?;
            let pong: String = redis::cmd("PING")
                .query(&mut con)
                .map_err(|e| server_error("PING", &e))?;
            if pong != "PONG" {
                return Err(Error::Protocol {
                    command: "PING".into(),
                    message: pong,
                });
            }
            self.nodes = vec![Node {
                addr,
                con: Some(con),
                used: Instant::now(),
            }];
            self.slots.clear();
            return Ok(());
        }
        let mut last = None;
        for addr in self.cfg.addresses.clone() {
            match self
                .open(&addr)
                .and_then(|mut con| self.read_slots(&mut con))
            {
                Ok(()) => return Ok(()),
                Err(e @ Error::Config(_)) => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Config("no address to connect to".into())))
    }

    fn read_slots(&mut self, con: &mut Connection) -> Result<()> {
        let v: Value = redis::cmd("CLUSTER").arg("SLOTS").query(con).map_err(|e| {
            let msg = e.to_string();
            if msg.contains("cluster support disabled") {
                Error::Config(format!(
                    "SR_DB_TYPE=Clustered, but {} is not a Redis Cluster ({msg}); set SR_DB_TYPE=Standalone",
                    self.cfg.addresses.join(",")
                ))
            } else {
                server_error("CLUSTER SLOTS", &e)
            }
        })?;
        let Value::Array(ranges) = v else {
            return Err(Error::Protocol {
                command: "CLUSTER SLOTS".into(),
                message: format!("{v:?}"),
            });
        };
        let mut slots = Vec::new();
        let mut addrs: Vec<String> = self.nodes.iter().map(|n| n.addr.clone()).collect();
        for r in ranges {
            let Value::Array(r) = r else { continue };
            let (Some(Value::Int(a)), Some(Value::Int(b)), Some(Value::Array(master))) =
                (r.first(), r.get(1), r.get(2))
            else {
                continue;
            };
            let host = match master.first() {
                Some(Value::BulkString(h)) => String::from_utf8_lossy(h).into_owned(),
                Some(Value::SimpleString(h)) => h.clone(),
                _ => continue,
            };
            let Some(Value::Int(port)) = master.get(1) else {
                continue;
            };
            let addr = format!("{host}:{port}");
            let idx = match addrs.iter().position(|x| *x == addr) {
                Some(i) => i,
                None => {
                    addrs.push(addr);
                    addrs.len() - 1
                }
            };
            slots.push((*a as u16, *b as u16, idx));
        }
        if slots.is_empty() {
            return Err(Error::Protocol {
                command: "CLUSTER SLOTS".into(),
                message: "no slots are served".into(),
            });
        }
        slots.sort();
        // Keep open connections to nodes we already knew.
        let mut old: Vec<Node> = std::mem::take(&mut self.nodes);
        self.nodes = addrs
            .into_iter()
            .map(|addr| {
                let con = old
                    .iter_mut()
                    .find(|n| n.addr == addr)
                    .and_then(|n| n.con.take());
                Node {
                    addr,
                    con,
                    used: Instant::now(),
                }
            })
            .collect();
        self.slots = slots;
        Ok(())
    }

    /// Re-read the slot map from the first node that answers.
    fn refresh(&mut self) {
        let addrs: Vec<String> = self.nodes.iter().map(|n| n.addr.clone()).collect();
        for addr in addrs {
            let Some(i) = self.nodes.iter().position(|n| n.addr == addr) else {
                continue;
            };
            let mut con = match self.nodes[i].con.take() {
                Some(c) => c,
                None => match self.open(&addr) {
                    Ok(c) => c,
                    Err(_) => continue,
                },
            };
            let ok = self.read_slots(&mut con).is_ok();
            if let Some(n) = self.nodes.iter_mut().find(|n| n.addr == addr) {
                n.con = Some(con);
            }
            if ok {
                return;
            }
        }
    }

    fn conn(&mut self, i: usize) -> Result<&mut Connection> {
        if !self.nodes[i].con.as_ref().is_some_and(|c| c.is_open()) {
            let c = self.open(&self.nodes[i].addr.clone())?;
            self.nodes[i].con = Some(c);
        }
        Ok(self.nodes[i].con.as_mut().expect("just set"))
    }

    fn index_of(&mut self, addr: &str) -> usize {
        if let Some(i) = self.nodes.iter().position(|n| n.addr == addr) {
            return i;
        }
        self.nodes.push(Node {
            addr: addr.to_string(),
            con: None,
            used: Instant::now(),
        });
        self.nodes.len() - 1
    }

    /// The node a redirection to `addr` goes to: only one of the cluster (see [`Self::known`]).
    fn redirect_target(&mut self, addr: &str, name: &str) -> Result<usize> {
        if !self.known(addr) {
            return Err(Error::Server {
                command: name.into(),
                message: format!(
                    "redirected to {addr}, which is not a node of the database's slot map; not following (credentials go only to its nodes)"
                ),
            });
        }
        Ok(self.index_of(addr))
    }

    /// Whether the database is a cluster.
    pub(crate) fn clustered(&self) -> bool {
        !self.slots.is_empty()
    }

    /// The node serving `key`.
    pub(crate) fn node_for_key(&self, key: &[u8]) -> usize {
        self.node_for_slot(hash_slot(key))
    }

    fn node_for_slot(&self, slot: u16) -> usize {
        self.slots
            .iter()
            .find(|(a, b, _)| *a <= slot && slot <= *b)
            .map(|(_, _, n)| *n)
            .unwrap_or(0)
    }

    /// The masters, each with its lowest slot, in slot order.
    pub(crate) fn shards(&self) -> Vec<Shard> {
        if self.slots.is_empty() {
            return self
                .nodes
                .iter()
                .take(1)
                .map(|n| Shard {
                    address: n.addr.clone(),
                    lowest_slot: 0,
                })
                .collect();
        }
        let mut seen: Vec<usize> = Vec::new();
        let mut out = Vec::new();
        for (a, _, n) in &self.slots {
            if !seen.contains(n) {
                seen.push(*n);
                out.push(Shard {
                    address: self.nodes[*n].addr.clone(),
                    lowest_slot: *a,
                });
            }
        }
        out
    }

    /// Run `cmd` on the node that owns `key` (or the first node), following redirections
    /// and retrying transient failures until the command timeout.
    pub(crate) fn run(&mut self, key: Option<&[u8]>, cmd: &Cmd, name: &str) -> Result<Value> {
        let target = key.map(|k| self.node_for_key(k)).unwrap_or(0);
        self.run_routed(
            target,
            key,
            Kind::of_cmd(cmd),
            |con| con.req_command(cmd).and_then(Value::extract_error),
            name,
        )
    }

    /// Run a command given as its arguments, packed into RESP in one buffer (one copy of
    /// large payloads instead of two), on the node owning `key`.
    pub(crate) fn run_args(&mut self, key: &[u8], args: &[&[u8]], name: &str) -> Result<Value> {
        let mut len = 16 + args.len() * 16;
        len += args.iter().map(|a| a.len()).sum::<usize>();
        let mut packed = Vec::with_capacity(len);
        // Writing to a Vec cannot fail; no string is allocated per argument.
        let _ = write!(packed, "*{}\r\n", args.len());
        for a in args {
            let _ = write!(packed, "${}\r\n", a.len());
            packed.extend_from_slice(a);
            packed.extend_from_slice(b"\r\n");
        }
        let target = self.node_for_key(key);
        self.run_routed(
            target,
            Some(key),
            Kind::of(args.first().copied()),
            |con| {
                con.req_packed_command(&packed)
                    .and_then(Value::extract_error)
            },
            name,
        )
    }

    /// Run `cmd` on the node with address `addr` (no redirection is followed).
    pub(crate) fn run_on(&mut self, addr: &str, cmd: &Cmd, name: &str) -> Result<Value> {
        let target = self.index_of(addr);
        self.run_routed(
            target,
            None,
            Kind::of_cmd(cmd),
            |con| con.req_command(cmd).and_then(Value::extract_error),
            name,
        )
    }

    /// Send `pipe` to the node owning `key` as one round trip; the replies, errors included.
    pub(crate) fn pipeline(
        &mut self,
        key: &[u8],
        pipe: &Pipeline,
        name: &str,
    ) -> Result<Vec<Value>> {
        let target = self.node_for_key(key);
        let count = pipe.len();
        let kind = Kind::of(pipe.cmd_iter().filter_map(|c| match c.args_iter().next() {
            Some(redis::Arg::Simple(b)) => Some(b),
            _ => None,
        }));
        let v = self.run_routed(
            target,
            Some(key),
            kind,
            |con| {
                con.req_packed_commands(&pipe.get_packed_pipeline(), 0, count)
                    .map(Value::Array)
            },
            name,
        )?;
        match v {
            Value::Array(items) => {
                // A MOVED inside a pipeline means the whole pipeline went to the wrong node.
                if let Some(Value::ServerError(e)) = items
                    .iter()
                    .find(|i| matches!(i, Value::ServerError(e) if e.code() == "MOVED"))
                {
                    tracing::debug!("pipeline redirected: {e:?}");
                    self.refresh();
                    let target = self.node_for_key(key);
                    let con = self.conn(target)?;
                    return con
                        .req_packed_commands(&pipe.get_packed_pipeline(), 0, count)
                        .map_err(|e| server_error(name, &e));
                }
                Ok(items)
            }
            other => Err(Error::Protocol {
                command: name.into(),
                message: format!("{other:?}"),
            }),
        }
    }

    /// `WAIT` on the connection a write just went through: until the configured number of
    /// replicas have everything written on it, or the wait timeout.
    fn wait_for_replicas(&mut self, target: usize, name: &str) -> Result<()> {
        let wanted = self.cfg.wait_replicas;
        let wait = self.cfg.wait_timeout;
        let read_timeout = self.cfg.io_timeout(false).saturating_add(wait);
        let con = self.conn(target)?;
        con.set_read_timeout(Some(read_timeout)).ok();
        // The write ran. If the wait itself fails (the shard's node was lost just after
        // it answered), no replica confirmed it: the same answer as a wait that ran out.
        let confirmed: i64 = match redis::cmd("WAIT")
            .arg(wanted)
            .arg(wait.as_millis().max(1) as u64)
            .query(con)
        {
            Ok(n) => n,
            Err(e) => {
                // The connection closed itself; the next command opens a new one.
                tracing::debug!(command = name, "waiting for replicas failed: {e}");
                0
            }
        };
        if confirmed < i64::from(wanted) {
            return Err(Error::NotReplicated {
                command: name.into(),
                confirmed,
                wanted,
            });
        }
        Ok(())
    }

    fn run_routed(
        &mut self,
        mut target: usize,
        key: Option<&[u8]>,
        kind: Kind,
        f: impl Fn(&mut Connection) -> redis::RedisResult<Value>,
        name: &str,
    ) -> Result<Value> {
        let deadline = Instant::now() + self.cfg.command_timeout;
        let read_timeout = self.cfg.io_timeout(kind.long);
        let mut asking = false;
        let mut redirects = 0;
        loop {
            // A kept connection the server has closed while it was idle (an idle timeout,
            // a restart) would lose the reply of a command not safe to repeat and make it
            // uncertain: such a command checks an idle connection first, while failing is
            // still harmless.
            let node = &self.nodes[target];
            let check = !kind.idempotent && node.con.is_some() && node.used.elapsed() >= IDLE_CHECK;
            let result = self.conn(target).and_then(|con| {
                con.set_read_timeout(Some(read_timeout)).ok();
                if check {
                    redis::cmd("PING")
                        .query::<()>(con)
                        .map_err(|e| server_error("PING", &e))?;
                }
                if asking {
                    redis::cmd("ASKING")
                        .query::<()>(con)
                        .map_err(|e| server_error("ASKING", &e))?;
                }
                Ok(f(con))
            });
            let err = match result {
                Ok(Ok(v)) => {
                    self.nodes[target].used = Instant::now();
                    if kind.write && self.cfg.wait_replicas > 0 {
                        self.wait_for_replicas(target, name)?;
                    }
                    return Ok(v);
                }
                Ok(Err(e)) => e,
                Err(e) => {
                    // Could not even connect (nothing was sent): treat as transient.
                    redis::RedisError::from(std::io::Error::new(
                        std::io::ErrorKind::ConnectionRefused,
                        e.to_string(),
                    ))
                }
            };
            asking = false;
            match classify(err) {
                Failure::Fatal(e) => return Err(server_error(name, &e)),
                Failure::Moved(addr) | Failure::Ask(addr) if redirects >= MAX_REDIRECTS => {
                    return Err(Error::Server {
                        command: name.into(),
                        message: format!("too many redirections (last to {addr})"),
                    });
                }
                Failure::Moved(addr) => {
                    redirects += 1;
                    self.refresh();
                    target = self.redirect_target(&addr, name)?;
                }
                Failure::Ask(addr) => {
                    redirects += 1;
                    if !self.known(&addr) {
                        self.refresh();
                    }
                    target = self.redirect_target(&addr, name)?;
                    asking = true;
                }
                Failure::Retry {
                    message: msg,
                    may_have_run,
                } => {
                    // Never reuse a connection that failed.
                    self.nodes[target].con = None;
                    if may_have_run && !kind.idempotent {
                        return Err(Error::Uncertain {
                            command: name.into(),
                            message: format!(
                                "the reply from {} was lost ({msg}); not sent again, as running it twice would change the result",
                                self.nodes[target].addr
                            ),
                        });
                    }
                    if Instant::now() >= deadline {
                        return Err(Error::Timeout {
                            command: name.into(),
                            seconds: self.cfg.command_timeout.as_secs(),
                            message: msg,
                        });
                    }
                    tracing::debug!(command = name, "transient failure: {msg}; retrying");
                    std::thread::sleep(self.cfg.command_interval);
                    if self.clustered() {
                        self.refresh();
                        if let Some(k) = key {
                            target = self.node_for_key(k);
                        }
                    }
                }
            }
        }
    }
}
