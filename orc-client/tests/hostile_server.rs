//! orc-client against a hostile or failing server: a tiny RESP server in this test that
//! answers the handshake and then misbehaves on purpose (a real Redis cannot be made to).
//! A reply larger than the client's limit (claimed or really sent) is refused at once and
//! costs nothing, and the client goes on on a new connection; a command that is not
//! safe to repeat is not re-sent after its reply is lost (one that is safe is); credentials
//! are sent exactly as given, and never to a node a redirection names outside the cluster.
#![allow(clippy::unwrap_used)]

use std::{
    io::{BufRead, BufReader, Write},
    net::{TcpListener, TcpStream},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use orc_client::{Client, Config, DataSet, Error};

#[derive(Clone, Copy)]
enum Mode {
    /// Answer data commands with a bulk string that claims 9 TB, then say nothing.
    HugeBulk,
    /// Answer with an array that claims 4 billion elements, then say nothing.
    HugeArray,
    /// Answer `AI.TENSORGET` with a real uint8 tensor of this many bytes, `EXISTS` with 1.
    Tensor(usize),
    /// Answer `EXISTS` with 1 wrapped in this many nested arrays.
    Deep(usize),
    /// Close the connection without answering data commands.
    Drop,
    /// Answer data commands with MOVED to `port`.
    Redirect(u16),
}

/// A server at `addr` whose every received command is in `log`.
struct Fake {
    addr: String,
    log: Arc<Mutex<Vec<Vec<String>>>>,
}

impl Fake {
    fn commands(&self, name: &str) -> Vec<Vec<String>> {
        let log = self.log.lock().unwrap();
        log.iter()
            .filter(|c| c[0].eq_ignore_ascii_case(name))
            .cloned()
            .collect()
    }
}

fn read_command(r: &mut BufReader<TcpStream>) -> Option<Vec<String>> {
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let n: usize = line.trim().strip_prefix('*')?.parse().ok()?;
    let mut args = Vec::new();
    for _ in 0..n {
        line.clear();
        r.read_line(&mut line).ok()?;
        let len: usize = line.trim().strip_prefix('$')?.parse().ok()?;
        let mut buf = vec![0; len + 2];
        std::io::Read::read_exact(r, &mut buf).ok()?;
        buf.truncate(len);
        args.push(String::from_utf8_lossy(&buf).into_owned());
    }
    Some(args)
}

fn fake(mode: Mode, cluster: bool) -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let log = l.clone();
            std::thread::spawn(move || {
                let mut w = stream.try_clone().unwrap();
                let mut r = BufReader::new(stream);
                while let Some(cmd) = read_command(&mut r) {
                    log.lock().unwrap().push(cmd.clone());
                    let word = cmd[0].to_ascii_uppercase();
                    let reply: Vec<u8> = match word.as_str() {
                        "PING" => b"+PONG\r\n".to_vec(),
                        "AUTH" | "CLIENT" | "SELECT" | "HELLO" | "READONLY" => b"+OK\r\n".to_vec(),
                        "CLUSTER" if cluster => format!(
                            "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$9\r\n127.0.0.1\r\n:{port}\r\n"
                        )
                        .into_bytes(),
                        _ => match mode {
                            Mode::Tensor(n) if word == "AI.TENSORGET" => {
                                let mut r = format!(
                                    "*6\r\n$5\r\ndtype\r\n$5\r\nUINT8\r\n$5\r\nshape\r\n*1\r\n:{n}\r\n$4\r\nblob\r\n${n}\r\n"
                                )
                                .into_bytes();
                                r.extend((0..n).map(|i| (i % 251) as u8));
                                r.extend_from_slice(b"\r\n");
                                r
                            }
                            Mode::Tensor(_) => b":1\r\n".to_vec(),
                            Mode::Deep(n) => [b"*1\r\n".repeat(n), b":1\r\n".to_vec()].concat(),
                            Mode::HugeBulk => b"$9000000000000\r\nabc".to_vec(),
                            Mode::HugeArray => b"*4000000000\r\n:1\r\n".to_vec(),
                            Mode::Drop => return,
                            Mode::Redirect(to) => {
                                format!("-MOVED 1 127.0.0.1:{to}\r\n").into_bytes()
                            }
                        },
                    };
                    if w.write_all(&reply).is_err() {
                        return;
                    }
                }
            });
        }
    });
    Fake {
        addr: format!("127.0.0.1:{port}"),
        log,
    }
}

fn config(f: &Fake, cluster: bool, timeout: Duration) -> Config {
    Config::new(&[f.addr.as_str()], cluster)
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .command_timeout(timeout)
        .intervals(Duration::from_millis(50), Duration::from_millis(50))
}

fn client(f: &Fake, cluster: bool, timeout: Duration) -> Client {
    Client::new(config(f, cluster, timeout)).unwrap()
}

/// The most memory this process has held (kB).
fn peak_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn hostile_servers_cost_nothing_and_lost_replies_are_handled_honestly() {
    // Replies claiming enormous sizes are refused at once (no wait for data that never
    // comes), without reserving memory for them.
    for mode in [Mode::HugeBulk, Mode::HugeArray] {
        let f = fake(mode, false);
        let mut c = client(&f, false, Duration::from_secs(20));
        let before = peak_kb();
        let t = Instant::now();
        let e = c.tensor_exists("t").unwrap_err();
        assert!(matches!(e, Error::Protocol { .. }), "{e}");
        assert!(e.to_string().contains("SR_MAX_REPLY_SIZE"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        assert!(
            peak_kb() < before + 64 * 1024,
            "a claimed length was allocated: {} kB -> {} kB",
            before,
            peak_kb()
        );
    }

    // A reply really sent, larger than the limit: refused, and the client goes on with a
    // new connection; one within the limit arrives whole.
    let f = fake(Mode::Tensor(32 << 20), false);
    let mut c =
        Client::new(config(&f, false, Duration::from_secs(20)).max_reply_size(1 << 20)).unwrap();
    let e = c.get_tensor("t").unwrap_err();
    assert!(matches!(e, Error::Protocol { .. }), "{e}");
    assert!(e.to_string().contains("1048576 bytes"), "{e}");
    assert!(c.tensor_exists("t").unwrap(), "the client did not go on");
    let f = fake(Mode::Tensor(900 << 10), false);
    let mut c =
        Client::new(config(&f, false, Duration::from_secs(20)).max_reply_size(1 << 20)).unwrap();
    let t = c.get_tensor("t").unwrap();
    assert_eq!(t.dims, [900 << 10]);
    assert!(
        t.data
            .iter()
            .enumerate()
            .all(|(i, &b)| b == (i % 251) as u8)
    );

    // Arrays nested without end: refused, no stack overflow.
    let f = fake(Mode::Deep(100_000), false);
    let mut c = client(&f, false, Duration::from_secs(20));
    let e = c.tensor_exists("t").unwrap_err();
    assert!(e.to_string().contains("nested too deeply"), "{e}");

    // A lost reply: a command safe to repeat is sent again (until the timeout); RPUSH,
    // which would add the entry twice, is sent once and reported as uncertain.
    let f = fake(Mode::Drop, false);
    let mut c = client(&f, false, Duration::from_secs(1));
    let e = c.tensor_exists("t").unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    assert!(f.commands("EXISTS").len() >= 2, "EXISTS was not retried");
    let e = c
        .append_to_list("l", &DataSet::new("d").unwrap())
        .unwrap_err();
    assert!(matches!(e, Error::Uncertain { .. }), "{e}");
    assert!(e.to_string().contains("may or may not have run"), "{e}");
    assert_eq!(f.commands("RPUSH").len(), 1, "RPUSH was sent again");

    // Credentials arrive exactly as given, whatever characters they hold.
    let f = fake(Mode::Drop, false);
    let pw = "p@ss:w/rd%20#?&=x y";
    let cfg = Config::new(&[f.addr.as_str()], false)
        .unwrap()
        .password(pw, Some("orc user"));
    Client::new(cfg).unwrap();
    let auth = f.commands("AUTH");
    assert!(!auth.is_empty(), "no AUTH sent");
    assert_eq!(auth[0][1..], ["orc user".to_string(), pw.to_string()]);

    // A redirection to a node outside the slot map is refused: no credentials go there.
    let stranger = fake(Mode::Drop, false);
    let port: u16 = stranger.addr.rsplit(':').next().unwrap().parse().unwrap();
    let f = fake(Mode::Redirect(port), true);
    let cfg = Config::new(&[f.addr.as_str()], true)
        .unwrap()
        .command_timeout(Duration::from_secs(2))
        .password("secret", None);
    let mut c = Client::new(cfg).unwrap();
    let e = c.tensor_exists("t").unwrap_err().to_string();
    assert!(e.contains("not a node of the database's slot map"), "{e}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        stranger.commands("AUTH").is_empty(),
        "the password went to a stranger"
    );
    assert!(
        stranger.log.lock().unwrap().is_empty(),
        "a stranger was contacted"
    );
}
