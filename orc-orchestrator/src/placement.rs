//! Where shards go: hosts, ports and bind addresses.

use std::net::IpAddr;

use orc_core::{Allocation, Error, OrchestratorSettings, Result, ShardSpec};

/// Place the database's servers: `settings.shards` shards and, after them, their replicas
/// (see [`OrchestratorSettings::servers`]); which replica follows which shard is the
/// deployment's choice when it forms the cluster.
///
/// On the local machine (an allocation without id) every shard runs here, bound to the
/// addresses of the chosen interfaces (loopback by default), on consecutive ports (or free
/// ones for port 0), and every port is checked before anything starts. Under a workload
/// manager shards go round-robin over the hosts, one per host first; a host that gets
/// several shards (at most `shards_per_host`) gives them consecutive ports. They bind to
/// their host's address, or, when interfaces are named, to those interfaces' addresses
/// as looked up on their node when they start.
///
/// Shards also listen on the deployment's companion ports (`port + offset` for each of
/// `companions`: a Redis Cluster's bus at `+10000`), which are checked too.
pub(crate) fn place(
    settings: &OrchestratorSettings,
    alloc: &Allocation,
    companions: &[u16],
) -> Result<Vec<ShardSpec>> {
    let n = settings.servers();
    let unit = if settings.replicas == 0 {
        "shard(s)"
    } else {
        "server(s)"
    };
    let what = if settings.replicas == 0 {
        format!("{n} shards")
    } else {
        format!(
            "{n} servers ({} shards with {} replica(s) each)",
            settings.shards, settings.replicas
        )
    };
    let highest = usize::from(companions.iter().copied().max().unwrap_or(0));
    let last = usize::from(settings.port) + n - 1;
    if settings.port != 0 && last + highest > usize::from(u16::MAX) {
        return Err(Error::config(format!(
            "the shards also need port + {highest} (the deployment's companion ports), so ports must be at most {} (got {}..{last})",
            usize::from(u16::MAX) - highest,
            settings.port,
        )));
    }
    let name = |i: usize| format!("{}_{i}", settings.db_identifier);
    if alloc.id.is_none() && settings.hosts.is_empty() {
        let names = if settings.interfaces.is_empty() {
            vec!["lo".to_string()]
        } else {
            settings.interfaces.clone()
        };
        let ips: Vec<IpAddr> = orc_net::resolve_interfaces(&names)?;
        let check = |ports: &[u16]| -> Result<()> {
            for p in ports {
                orc_net::ensure_port_free(&ips, *p)?;
                for offset in companions {
                    orc_net::ensure_port_free(&ips, *p + offset)?;
                }
            }
            Ok(())
        };
        let ports: Vec<u16> = if settings.port == 0 {
            // Chosen ports can be taken by someone else before we check them again; pick anew.
            let mut attempt = 0;
            loop {
                let ports = orc_net::free_ports_with(&ips, n, companions)?;
                match check(&ports) {
                    Ok(()) => break ports,
                    Err(e) if attempt >= 5 => return Err(e),
                    Err(_) => attempt += 1,
                }
            }
        } else {
            let ports: Vec<u16> = (0..n).map(|i| settings.port + i as u16).collect();
            check(&ports)?;
            ports
        };
        let host = alloc
            .hosts
            .first()
            .cloned()
            .unwrap_or_else(orc_net::hostname);
        let bind: Vec<String> = ips.iter().map(IpAddr::to_string).collect();
        return Ok(ports
            .into_iter()
            .enumerate()
            .map(|(index, port)| {
                let mut spec = ShardSpec::new(index, name(index), host.clone(), port);
                spec.bind = bind.clone();
                spec
            })
            .collect());
    }
    let hosts = if settings.hosts.is_empty() {
        &alloc.hosts
    } else {
        &settings.hosts
    };
    if hosts.is_empty() {
        return Err(Error::config(
            "the launcher reported no hosts to place shards on",
        ));
    }
    let per_host = settings.shards_per_host.max(1);
    if hosts.len() * per_host < n {
        return Err(Error::config(format!(
            "{what} need {} host(s) at {per_host} {unit} per host, but {} {} ({}): get more nodes, or allow more per host (--shards-per-host {})",
            n.div_ceil(per_host),
            if settings.hosts.is_empty() {
                "the allocation has"
            } else {
                "--hosts names"
            },
            hosts.len(),
            hosts.join(","),
            n.div_ceil(hosts.len()),
        )));
    }
    let base = if settings.port == 0 {
        6379
    } else {
        settings.port
    };
    Ok((0..n)
        .map(|index| {
            let host = hosts[index % hosts.len()].clone();
            let port = base + (index / hosts.len()) as u16;
            // Named interfaces exist on the shard's node, not necessarily here. A node
            // whose name does not resolve here looks its own address up itself, and the
            // shard is reached at the address it bound.
            let (bind, interfaces) = match (settings.interfaces.is_empty(), resolve(&host)) {
                (true, Some(ip)) => (vec![ip], Vec::new()),
                (true, None) => (Vec::new(), vec![orc_net::NODE_ADDRESS.to_string()]),
                (false, _) => (Vec::new(), settings.interfaces.clone()),
            };
            let mut spec = ShardSpec::new(index, name(index), host, port);
            spec.bind = bind;
            spec.interfaces = interfaces;
            spec
        })
        .collect())
}

/// The IPv4 address of `host` (shards bind to it and advertise it), when it resolves here.
fn resolve(host: &str) -> Option<String> {
    use std::net::ToSocketAddrs;
    (host, 0)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.find(|a| a.is_ipv4()))
        .map(|a| a.ip().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_shards_get_consecutive_ports_on_loopback() {
        let mut s = OrchestratorSettings::with_shards(3);
        let ports = orc_net::free_ports(&[IpAddr::from([127, 0, 0, 1])], 1).expect("port");
        s.port = ports[0];
        // Consecutive ports may be taken by chance; then the error must say so.
        match place(&s, &Allocation::new(None, vec!["vm".into()]), &[]) {
            Ok(shards) => {
                assert_eq!(shards.len(), 3);
                assert_eq!(shards[2].port, s.port + 2);
                assert_eq!(shards[1].bind, vec!["127.0.0.1".to_string()]);
                assert_eq!(shards[1].name, "orchestrator_1");
                assert_eq!(
                    shards[0].address().to_string(),
                    format!("127.0.0.1:{}", s.port)
                );
            }
            Err(e) => assert!(e.to_string().contains("already in use"), "{e}"),
        }
    }

    #[test]
    fn ports_leave_room_for_companion_ports() {
        let bus = [10000];
        let mut s = OrchestratorSettings::with_shards(2);
        s.port = 55535;
        let err = place(&s, &Allocation::new(None, vec![]), &bus)
            .unwrap_err()
            .to_string();
        assert!(err.contains("at most 55535"), "{err}");
        s.port = 0;
        let shards = place(&s, &Allocation::new(None, vec![]), &bus).expect("placed");
        assert!(shards.iter().all(|s| s.port <= 19999 && s.port >= 10000));
    }

    #[test]
    fn allocation_hosts_get_one_shard_each_first() {
        let mut s = OrchestratorSettings::with_shards(5);
        let alloc = Allocation::new(
            Some("42".into()),
            vec!["n1".into(), "n2".into(), "n3".into()],
        );
        let err = place(&s, &alloc, &[10000]).unwrap_err().to_string();
        assert!(
            err.contains("5 shards need 5 host(s) at 1 shard(s) per host")
                && err.contains("the allocation has 3 (n1,n2,n3)")
                && err.contains("--shards-per-host 2"),
            "{err}"
        );
        s.shards_per_host = 2;
        let alloc = Allocation::new(
            Some("42".into()),
            vec!["n1".into(), "n2".into(), "n3".into()],
        );
        let shards = place(&s, &alloc, &[10000]).expect("placed");
        let got: Vec<(String, u16)> = shards.iter().map(|s| (s.host.clone(), s.port)).collect();
        assert_eq!(
            got,
            [
                ("n1", 6379),
                ("n2", 6379),
                ("n3", 6379),
                ("n1", 6380),
                ("n2", 6380)
            ]
            .map(|(h, p)| (h.to_string(), p))
        );
    }
}
