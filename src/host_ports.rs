//! Which local process listens on a TCP port, so that an error can say "port 8001 is held by
//! process `python3` (pid 4242)" instead of just "port 8001 is taken".
//!
//! Owns the reading of `/proc/net/tcp`, `/proc/net/tcp6` and `/proc/<pid>/fd` (Linux only,
//! std only). It never fails: a file it cannot read is skipped, and a port whose process it
//! cannot see is reported without pid or name. It must not probe ports over the network or
//! talk to Docker; deciding whether a holder is one of our containers is the caller's job.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

/// A process listening on a TCP port, as far as `/proc` lets us see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listener {
    /// `None` when no readable `/proc/<pid>/fd` holds the socket (another user's process,
    /// another PID namespace).
    pub pid: Option<u32>,
    /// The process's `comm` name, e.g. `python3`.
    pub name: Option<String>,
}

/// The TCP socket state `LISTEN` in `/proc/net/tcp*`.
const LISTEN_STATE: &str = "0A";

/// Every TCP port something listens on locally (IPv4 and IPv6), with its process if known.
pub fn listening_ports() -> HashMap<u16, Listener> {
    listening_ports_under(Path::new("/proc"))
}

fn listening_ports_under(proc_root: &Path) -> HashMap<u16, Listener> {
    let mut port_by_inode: HashMap<u64, u16> = HashMap::new();
    for table in ["net/tcp", "net/tcp6"] {
        if let Ok(contents) = fs::read_to_string(proc_root.join(table)) {
            port_by_inode.extend(parse_listening_sockets(&contents));
        }
    }
    let mut listeners: HashMap<u16, Listener> = port_by_inode
        .values()
        .map(|port| (*port, Listener::default()))
        .collect();
    if port_by_inode.is_empty() {
        return listeners;
    }

    let Ok(processes) = fs::read_dir(proc_root) else {
        return listeners;
    };
    let mut unresolved = port_by_inode.len();
    for process in processes.flatten() {
        let Some(pid) = process
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(descriptors) = fs::read_dir(process.path().join("fd")) else {
            continue;
        };
        let mut name: Option<Option<String>> = None;
        for descriptor in descriptors.flatten() {
            let Ok(target) = fs::read_link(descriptor.path()) else {
                continue;
            };
            let Some(inode) = target.to_str().and_then(socket_inode) else {
                continue;
            };
            let Some(port) = port_by_inode.remove(&inode) else {
                continue;
            };
            let name = name
                .get_or_insert_with(|| process_name(&process.path()))
                .clone();
            let listener = listeners.entry(port).or_default();
            if listener.pid.is_none() {
                *listener = Listener {
                    pid: Some(pid),
                    name,
                };
            }
            unresolved -= 1;
        }
        if unresolved == 0 {
            break;
        }
    }
    listeners
}

/// Socket inode → local port of every `LISTEN` socket in one `/proc/net/tcp*` table.
fn parse_listening_sockets(table: &str) -> impl Iterator<Item = (u64, u16)> + '_ {
    // Columns: sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid
    // timeout inode …
    table.lines().skip(1).filter_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(3) != Some(&LISTEN_STATE) {
            return None;
        }
        let (_, port) = fields.get(1)?.rsplit_once(':')?;
        let port = u16::from_str_radix(port, 16).ok()?;
        let inode = fields.get(9)?.parse::<u64>().ok()?;
        // Inode 0 is a socket that is no longer attached to a file descriptor.
        (inode != 0).then_some((inode, port))
    })
}

/// The inode of a descriptor link target like `socket:[12345]`.
fn socket_inode(target: &str) -> Option<u64> {
    target
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

fn process_name(process_directory: &Path) -> Option<String> {
    let name = fs::read_to_string(process_directory.join("comm")).ok()?;
    let name = name.trim_end_matches('\n');
    (!name.is_empty()).then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listening_sockets_only() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F41 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F42 0100007F:A000 01 00000000:00000000 00:00000000 00000000  1000        0 4343 1 0000000000000000 100 0 0 10 0
   2: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000000000000 100 0 0 10 0
";
        let sockets: Vec<(u64, u16)> = parse_listening_sockets(table).collect();
        assert_eq!(sockets, vec![(4242, 8001)]);
    }

    #[test]
    fn parses_ipv6_addresses() {
        let table = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 100 0 0 10 0
";
        let sockets: Vec<(u64, u16)> = parse_listening_sockets(table).collect();
        assert_eq!(sockets, vec![(777, 8080)]);
    }

    #[test]
    fn reads_socket_inodes_from_descriptor_links() {
        assert_eq!(socket_inode("socket:[12345]"), Some(12345));
        assert_eq!(socket_inode("pipe:[12345]"), None);
        assert_eq!(socket_inode("/dev/null"), None);
    }

    #[test]
    fn finds_our_own_listener() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a local port");
        let port = listener.local_addr().expect("local address").port();
        let ports = listening_ports();
        let found = ports
            .get(&port)
            .unwrap_or_else(|| panic!("port {port} is not among the listening ports"));
        assert_eq!(found.pid, Some(std::process::id()));
        let name = found.name.as_deref().expect("our own comm is readable");
        assert!(!name.is_empty());
        drop(listener);
    }

    #[test]
    fn a_missing_proc_gives_nothing_and_no_error() {
        let ports = listening_ports_under(Path::new("/nonexistent/proc"));
        assert!(ports.is_empty());
    }
}
