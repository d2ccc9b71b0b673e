//! One connection to one server: TCP, a Unix socket or TLS, authenticated once, with
//! bounded replies ([`crate::resp`]) and read/write timeouts. It implements the redis
//! crate's `ConnectionLike`, so commands are packed and replies converted by the redis
//! crate; only the bytes on the socket are read here, where their size can be bounded.

use std::{
    io::{self, BufReader, Read, Write},
    net::{TcpStream, ToSocketAddrs},
    os::{
        fd::{AsRawFd, RawFd},
        unix::net::UnixStream,
    },
    time::{Duration, Instant},
};

use redis::{ConnectionLike, ErrorKind, RedisError, RedisResult, Value};

use crate::{
    config::Config,
    resp::{Limits, ReplyError, read_reply},
};

/// Arrays nested in arrays, at most, in one reply (Redis's own replies nest 4 deep).
const MAX_DEPTH: usize = 32;

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    #[cfg(feature = "tls")]
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Unix(s) => s.flush(),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.flush(),
        }
    }
}

impl Stream {
    fn fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.sock.as_raw_fd(),
        }
    }
}

/// A connection to one server.
pub(crate) struct Connection {
    io: BufReader<Stream>,
    limits: Limits,
    /// How long to poll for a reply before sleeping on the socket.
    spin: Duration,
    /// False once a read or write failed or a reply was refused: the stream may be in
    /// the middle of a reply and must not be used again.
    open: bool,
    /// The socket's read timeout as last set: set again only when it changes (most
    /// commands ask for the same one, and a system call per command shows with many
    /// client threads on few cores).
    read_timeout: Option<Option<Duration>>,
}

fn io_error(e: io::Error) -> RedisError {
    RedisError::from(e)
}

/// What every connection of a client is opened with: the configuration, and its TLS
/// settings prepared once (the CA file or system store is read once, not per connection).
pub(crate) struct Dialer {
    cfg: Config,
    #[cfg(feature = "tls")]
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl Dialer {
    /// Prepare to open connections as `cfg` says; fails on unusable TLS settings.
    pub(crate) fn new(cfg: &Config) -> Result<Dialer, String> {
        #[cfg(feature = "tls")]
        let tls = match cfg.tls {
            true => Some(crate::tls::client_config(cfg.tls_ca_file.as_deref())?),
            false => None,
        };
        #[cfg(not(feature = "tls"))]
        if cfg.tls {
            return Err(
                "TLS was asked for (SR_TLS), but orc-client was built without its `tls` feature"
                    .into(),
            );
        }
        Ok(Dialer {
            cfg: cfg.clone(),
            #[cfg(feature = "tls")]
            tls,
        })
    }
}

impl Connection {
    /// Connect to `addr` (`host:port`, or `unix:///path`) within `timeout`, speak TLS when
    /// the configuration asks, and authenticate with its credentials.
    pub(crate) fn open(dialer: &Dialer, addr: &str, timeout: Duration) -> RedisResult<Connection> {
        let cfg = &dialer.cfg;
        let stream = match addr.strip_prefix("unix://") {
            Some(path) => Stream::Unix(UnixStream::connect(path).map_err(io_error)?),
            None => {
                let tcp = connect_tcp(addr, timeout)?;
                tcp.set_nodelay(true).map_err(io_error)?;
                wrap(dialer, addr, tcp)?
            }
        };
        let mut con = Connection {
            io: BufReader::with_capacity(64 * 1024, stream),
            limits: Limits {
                bytes: cfg.max_reply_size,
                depth: MAX_DEPTH,
            },
            spin: cfg.spin_wait,
            open: true,
            read_timeout: None,
        };
        // The TLS handshake and authentication are bounded too.
        con.set_read_timeout(Some(timeout)).map_err(io_error)?;
        con.set_write_timeout(Some(timeout)).map_err(io_error)?;
        if let Some(password) = &cfg.password {
            let mut auth = redis::cmd("AUTH");
            if let Some(user) = &cfg.username {
                auth.arg(user);
            }
            auth.arg(password);
            if let Value::ServerError(e) = con.req_command(&auth)? {
                return Err(RedisError::from((
                    ErrorKind::AuthenticationFailed,
                    "authentication failed",
                    format!("{} {}", e.code(), e.details().unwrap_or("")),
                )));
            }
        }
        Ok(con)
    }

    /// How long one read may block (a system call only when it changes).
    pub(crate) fn set_read_timeout(&mut self, d: Option<Duration>) -> io::Result<()> {
        if self.read_timeout == Some(d) {
            return Ok(());
        }
        match self.io.get_ref() {
            Stream::Tcp(s) => s.set_read_timeout(d),
            Stream::Unix(s) => s.set_read_timeout(d),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.sock.set_read_timeout(d),
        }?;
        self.read_timeout = Some(d);
        Ok(())
    }

    /// How long one write may block.
    pub(crate) fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        match self.io.get_ref() {
            Stream::Tcp(s) => s.set_write_timeout(d),
            Stream::Unix(s) => s.set_write_timeout(d),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.sock.set_write_timeout(d),
        }
    }

    fn send(&mut self, bytes: &[u8]) -> RedisResult<()> {
        let io = self.io.get_mut();
        let r = io.write_all(bytes).and_then(|()| io.flush());
        if r.is_err() {
            self.open = false;
        }
        r.map_err(io_error)
    }

    /// Poll the socket until a reply is there or the spin time is up, yielding the CPU
    /// between looks; the read that follows then finds the data without sleeping.
    fn spin_for_reply(&self) {
        if self.spin.is_zero() || !self.io.buffer().is_empty() {
            return;
        }
        let until = Instant::now() + self.spin;
        let mut p = libc::pollfd {
            fd: self.io.get_ref().fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        loop {
            // SAFETY: one valid pollfd for an open socket, and no waiting (timeout 0).
            if unsafe { libc::poll(&mut p, 1, 0) } != 0 || Instant::now() >= until {
                return;
            }
            std::thread::yield_now();
        }
    }

    fn receive(&mut self) -> RedisResult<Value> {
        self.spin_for_reply();
        match read_reply(&mut self.io, self.limits) {
            Ok(v) => Ok(v),
            Err(e) => {
                self.open = false;
                Err(match e {
                    ReplyError::Io(e) => io_error(e),
                    other => {
                        RedisError::from((ErrorKind::Parse, "reply refused", other.to_string()))
                    }
                })
            }
        }
    }
}

fn connect_tcp(addr: &str, timeout: Duration) -> RedisResult<TcpStream> {
    let mut last = None;
    for sa in addr.to_socket_addrs().map_err(io_error)? {
        match TcpStream::connect_timeout(&sa, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(io_error(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{addr} resolves to no address"),
        )
    })))
}

#[cfg(feature = "tls")]
fn wrap(dialer: &Dialer, addr: &str, tcp: TcpStream) -> RedisResult<Stream> {
    let Some(tls) = &dialer.tls else {
        return Ok(Stream::Tcp(tcp));
    };
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let name = rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| {
        RedisError::from((
            ErrorKind::InvalidClientConfig,
            "TLS",
            format!("{host}: {e}"),
        ))
    })?;
    let session = rustls::ClientConnection::new(tls.clone(), name)
        .map_err(|e| RedisError::from((ErrorKind::InvalidClientConfig, "TLS", e.to_string())))?;
    Ok(Stream::Tls(Box::new(rustls::StreamOwned::new(
        session, tcp,
    ))))
}

#[cfg(not(feature = "tls"))]
fn wrap(_dialer: &Dialer, _addr: &str, tcp: TcpStream) -> RedisResult<Stream> {
    Ok(Stream::Tcp(tcp))
}

impl ConnectionLike for Connection {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        self.send(cmd)?;
        self.receive()
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        self.send(cmd)?;
        let mut out = Vec::with_capacity(count.min(1024));
        for i in 0..offset + count {
            let v = self.receive()?;
            if i >= offset {
                out.push(v);
            }
        }
        Ok(out)
    }

    fn get_db(&self) -> i64 {
        0
    }

    fn check_connection(&mut self) -> bool {
        self.open
            && matches!(
                self.req_command(&redis::cmd("PING")),
                Ok(Value::SimpleString(ref s)) if s == "PONG"
            )
    }

    fn is_open(&self) -> bool {
        self.open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The read timeout is set again only when it changes: every change still reaches the
    /// socket, and a read blocks for the timeout last asked for.
    #[test]
    fn read_timeout_follows_every_change() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let cfg = Config::from_lookup("", |k| match k {
            "SSDB" => Some(addr.clone()),
            "SR_DB_TYPE" => Some("Standalone".into()),
            _ => None,
        })
        .unwrap();
        let dialer = Dialer::new(&cfg).unwrap();
        let mut con = Connection::open(&dialer, &addr, Duration::from_secs(5)).unwrap();
        // The server accepts and never answers.
        let (_peer, _) = listener.accept().unwrap();
        let timeout = |con: &Connection| match con.io.get_ref() {
            Stream::Tcp(s) => s.read_timeout().unwrap(),
            _ => unreachable!("a TCP connection"),
        };
        assert_eq!(timeout(&con), Some(Duration::from_secs(5)));
        for d in [200, 200, 7000, 7000, 120] {
            con.set_read_timeout(Some(Duration::from_millis(d)))
                .unwrap();
            assert_eq!(timeout(&con), Some(Duration::from_millis(d)));
        }
        let t = Instant::now();
        assert!(con.req_command(&redis::cmd("PING")).is_err());
        let waited = t.elapsed();
        assert!(
            waited >= Duration::from_millis(100) && waited < Duration::from_secs(3),
            "{waited:?}"
        );
    }
}
