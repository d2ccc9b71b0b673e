//! Network helpers for **orc**: the IPv4 addresses of this host's interfaces, free ports
//! (alone or with companion ports, such as a Redis Cluster's bus), and the host name.
//!
//! # Example
//!
//! ```
//! use std::net::{IpAddr, Ipv4Addr};
//! let lo = orc_net::resolve_interfaces(&["lo".to_string()])?;
//! assert_eq!(lo, [IpAddr::V4(Ipv4Addr::LOCALHOST)]);
//! let ports = orc_net::free_ports(&lo, 2)?;
//! assert!(orc_net::port_is_free(lo[0], ports[0]));
//! assert!(!orc_net::hostname().is_empty());
//! # Ok::<(), orc_core::Error>(())
//! ```
#![deny(missing_docs)]

use std::{
    collections::BTreeMap,
    ffi::CStr,
    net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener},
};

use orc_core::{Error, Result};

/// The IPv4 addresses of every interface on this host, by interface name.
pub fn interfaces() -> Result<BTreeMap<String, Vec<Ipv4Addr>>> {
    let mut out: BTreeMap<String, Vec<Ipv4Addr>> = BTreeMap::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(Error::io(
            "listing network interfaces",
            std::io::Error::last_os_error(),
        ));
    }
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a valid node of the list returned by getifaddrs.
        let ifa = unsafe { &*cur };
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { CStr::from_ptr(ifa.ifa_name) }
            .to_string_lossy()
            .into_owned();
        let entry = out.entry(name).or_default();
        if !ifa.ifa_addr.is_null() {
            // SAFETY: ifa_addr points to a sockaddr whose family says how to read it.
            let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
            if family == libc::AF_INET {
                // SAFETY: family AF_INET means the sockaddr is a sockaddr_in.
                let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                if !entry.contains(&ip) {
                    entry.push(ip);
                }
            }
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

/// The first IPv4 address of each named interface, in order, without duplicates.
///
/// An unknown interface or one without an IPv4 address is an error that lists the
/// interfaces that do exist (SmartSim only warns, then fails later).
pub fn resolve_interfaces(names: &[String]) -> Result<Vec<IpAddr>> {
    let all = interfaces()?;
    let available = || all.keys().cloned().collect::<Vec<_>>().join(", ");
    let mut out = Vec::new();
    for name in names {
        let ip = match all.get(name) {
            None => {
                return Err(Error::Interface {
                    name: name.clone(),
                    problem: "does not exist".into(),
                    available: available(),
                });
            }
            Some(ips) if ips.is_empty() => {
                return Err(Error::Interface {
                    name: name.clone(),
                    problem: "has no IPv4 address".into(),
                    available: available(),
                });
            }
            Some(ips) => IpAddr::V4(ips[0]),
        };
        if !out.contains(&ip) {
            out.push(ip);
        }
    }
    Ok(out)
}

/// Whether `port` can be bound on `ip` right now.
pub fn port_is_free(ip: IpAddr, port: u16) -> bool {
    TcpListener::bind(SocketAddr::new(ip, port)).is_ok()
}

/// Fail with [`Error::PortInUse`] when `port` is taken on any of `ips`.
pub fn ensure_port_free(ips: &[IpAddr], port: u16) -> Result<()> {
    for ip in ips {
        if !port_is_free(*ip, port) {
            return Err(Error::PortInUse {
                host: ip.to_string(),
                port,
                by: String::new(),
            });
        }
    }
    Ok(())
}

/// `count` ports that are free on all `ips`, chosen by the kernel.
pub fn free_ports(ips: &[IpAddr], count: usize) -> Result<Vec<u16>> {
    let first = ips
        .first()
        .copied()
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let mut held = Vec::new();
    let mut ports = Vec::new();
    let mut attempts = 0;
    while ports.len() < count {
        attempts += 1;
        if attempts > count * 50 + 100 {
            return Err(Error::config("could not find enough free ports"));
        }
        let l = TcpListener::bind(SocketAddr::new(first, 0))
            .map_err(|e| Error::io(format!("binding a free port on {first}"), e))?;
        let port = l
            .local_addr()
            .map_err(|e| Error::io("reading a bound port", e))?
            .port();
        if ips.iter().skip(1).all(|ip| port_is_free(*ip, port)) {
            ports.push(port);
        }
        held.push(l); // keep it bound so the kernel does not hand it out twice
    }
    Ok(ports)
}

/// Ports recently handed out by [`free_ports_with`] in this process.
static HANDED_OUT: std::sync::Mutex<Vec<(u16, std::time::Instant)>> =
    std::sync::Mutex::new(Vec::new());

/// How long a handed-out port is kept from other callers in this process.
const HANDED_OUT_FOR: std::time::Duration = std::time::Duration::from_secs(120);

/// `count` distinct ports that are free on all `ips` together with their companion ports
/// (`port + offset` for each of `offsets`: a Redis Cluster's bus port, say).
///
/// Ports come from `10000..10000 + min(lowest offset, 10000)`, so no companion port is
/// ever another shard's port; with the Redis bus offset (10000) ports are 10000..=19999
/// and bus ports 20000..=29999, both below the usual ephemeral range (32768 and up) that
/// client connections use. Without offsets this is [`free_ports`].
pub fn free_ports_with(ips: &[IpAddr], count: usize, offsets: &[u16]) -> Result<Vec<u16>> {
    if !offsets.iter().any(|o| *o > 0) {
        return free_ports(ips, count);
    }
    pick_blocks(ips, count, 1, offsets)
}

/// The first of `len` consecutive ports that are free on all `ips` together with their
/// companion ports (as in [`free_ports_with`], from the same range and never handed out
/// twice by this process): for shards that must get consecutive ports, such as several
/// shards on one node of a workload manager.
pub fn free_port_block(ips: &[IpAddr], len: u16, offsets: &[u16]) -> Result<u16> {
    pick_blocks(ips, 1, len.max(1), offsets).map(|b| b[0])
}

/// `count` starts of blocks of `len` consecutive ports, each port free on all `ips` with
/// its companions, drawn from `10000..10000 + min(lowest offset, 10000)`.
fn pick_blocks(ips: &[IpAddr], count: usize, len: u16, offsets: &[u16]) -> Result<Vec<u16>> {
    let lowest = offsets
        .iter()
        .copied()
        .filter(|o| *o > 0)
        .min()
        .unwrap_or(10000)
        .min(10000);
    let base: u16 = 10000;
    let highest = offsets.iter().copied().max().unwrap_or(0);
    if len >= lowest
        || u32::from(base) + u32::from(lowest) + u32::from(highest) > u32::from(u16::MAX)
    {
        return Err(Error::config(format!(
            "{len} consecutive ports with companion ports {offsets:?} above them do not fit below 65536"
        )));
    }
    let span = u64::from(lowest - len) + 1;
    // A small xorshift seeded from the clock and pid spreads concurrent callers apart.
    let mut x: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        ^ (u64::from(std::process::id()) << 32)
        | 1;
    let mut starts: Vec<u16> = Vec::new();
    // Ports handed out in this process stay taken for a while: a caller launching in
    // another thread has not bound them yet, so the check below cannot see them.
    let mut handed = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
    handed.retain(|(_, at)| at.elapsed() < HANDED_OUT_FOR);
    for _ in 0..count * 200 + 1000 {
        if starts.len() == count {
            let now = std::time::Instant::now();
            for s in &starts {
                handed.extend((0..len).map(|k| (s + k, now)));
            }
            return Ok(starts);
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let start = base + (x % span) as u16;
        let block = start..start + len;
        let taken = |p: u16| {
            handed.iter().any(|(h, _)| *h == p)
                || starts.iter().any(|s| (*s..*s + len).contains(&p))
        };
        let all_free = || {
            block.clone().all(|port| {
                ips.iter().all(|ip| {
                    port_is_free(*ip, port) && offsets.iter().all(|o| port_is_free(*ip, port + o))
                })
            })
        };
        if !block.clone().any(taken) && all_free() {
            starts.push(start);
        }
    }
    Err(Error::config(
        "could not find enough free ports with their companion ports",
    ))
}

/// This host's short name.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates on success.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end])
        .split('.')
        .next()
        .unwrap_or("localhost")
        .to_string()
}

/// The name that stands, in a list of interfaces, for "this node's own address" (see
/// [`node_address`]): shards on nodes whose names do not resolve where orc runs look
/// their address up on their node.
pub const NODE_ADDRESS: &str = "@node";

/// This node's own IPv4 address: what its host name resolves to here, unless that is a
/// loopback address (Debian maps the host name to 127.0.1.1); then the first address of
/// an interface that is not loopback.
pub fn node_address() -> Result<IpAddr> {
    use std::net::ToSocketAddrs;
    let name = hostname();
    let by_name = (name.as_str(), 0)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.find(|a| a.is_ipv4() && !a.ip().is_loopback()))
        .map(|a| a.ip());
    if let Some(ip) = by_name {
        return Ok(ip);
    }
    interfaces()?
        .into_values()
        .flatten()
        .find(|ip| !ip.is_loopback())
        .map(IpAddr::V4)
        .ok_or_else(|| Error::Interface {
            name: NODE_ADDRESS.into(),
            problem: format!("host {name} has no IPv4 address but loopback"),
            available: String::new(),
        })
}

/// The addresses of `names` as [`resolve_interfaces`] finds them, where
/// [`NODE_ADDRESS`] stands for [`node_address`].
pub fn resolve_on_node(names: &[String]) -> Result<Vec<IpAddr>> {
    let mut out = Vec::new();
    for name in names {
        let ips = if name == NODE_ADDRESS {
            vec![node_address()?]
        } else {
            resolve_interfaces(std::slice::from_ref(name))?
        };
        for ip in ips {
            if !out.contains(&ip) {
                out.push(ip);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_has_its_own_address() {
        // Loopback by name, and the node's own (non-loopback) address for `@node`, where
        // this machine has one.
        let lo = resolve_on_node(&["lo".into()]).unwrap();
        assert_eq!(lo, [IpAddr::V4(Ipv4Addr::LOCALHOST)]);
        match resolve_on_node(&[NODE_ADDRESS.into()]) {
            Ok(ips) => assert!(ips.iter().all(|ip| !ip.is_loopback()), "{ips:?}"),
            Err(e) => assert!(
                e.to_string().contains("no IPv4 address but loopback"),
                "{e}"
            ),
        }
        assert!(resolve_on_node(&["no-such-interface".into()]).is_err());
    }

    #[test]
    fn concurrent_callers_never_share_cluster_ports() {
        let lo = [IpAddr::V4(Ipv4Addr::LOCALHOST)];
        let picks: Vec<Vec<u16>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| free_ports_with(&lo, 50, &[10000]).expect("ports")))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut all: Vec<u16> = picks.concat();
        all.sort_unstable();
        let n = all.len();
        all.dedup();
        assert_eq!(all.len(), n, "a port was handed out twice");
    }

    #[test]
    fn blocks_are_consecutive_free_and_never_overlap() {
        let lo = [IpAddr::V4(Ipv4Addr::LOCALHOST)];
        let a = free_port_block(&lo, 5, &[10000]).expect("block");
        let b = free_port_block(&lo, 5, &[10000]).expect("block");
        assert!(a + 5 <= b || b + 5 <= a, "{a} and {b} overlap");
        for p in a..a + 5 {
            assert!((10000..20000).contains(&p) && port_is_free(lo[0], p + 10000));
        }
        let singles = free_ports_with(&lo, 50, &[10000]).expect("ports");
        assert!(
            singles
                .iter()
                .all(|p| !(a..a + 5).contains(p) && !(b..b + 5).contains(p))
        );
        assert!(free_port_block(&lo, 10000, &[10000]).is_err());
    }

    #[test]
    fn loopback_resolves_and_unknown_interfaces_are_refused() {
        let ips = resolve_interfaces(&["lo".into()]).expect("lo exists");
        assert_eq!(ips, vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]);
        let err = resolve_interfaces(&["nosuchnic0".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("`nosuchnic0` does not exist"), "{err}");
        assert!(err.contains("lo"), "{err}");
    }

    #[test]
    fn free_ports_are_distinct_and_bindable() {
        let lo = [IpAddr::V4(Ipv4Addr::LOCALHOST)];
        let ports = free_ports(&lo, 3).expect("ports");
        assert_eq!(ports.len(), 3);
        assert!(ports[0] != ports[1] && ports[1] != ports[2] && ports[0] != ports[2]);
        let held = TcpListener::bind(("127.0.0.1", ports[0])).expect("bind");
        assert!(!port_is_free(lo[0], ports[0]));
        assert!(ensure_port_free(&lo, ports[0]).is_err());
        drop(held);
        assert!(ensure_port_free(&lo, ports[0]).is_ok());
    }
}
