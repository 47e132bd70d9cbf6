//! What `tests/` and `bench/` share to start real components on loopback:
//! ports for the servers they start, and a tansu broker on its own storage.
//! Standard library only.

use std::collections::HashSet;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The ports this process handed out: never the same twice.
static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// The kernel's ephemeral range (client sockets, binds to port 0), from
/// `/proc`, or Linux's default.
fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut parts = text.split_whitespace().map(|p| p.parse::<u16>().ok());
            Some((parts.next()??, parts.next()??))
        })
        .unwrap_or((32768, 60999))
}

/// A port for a server a test starts. Taken below the kernel's ephemeral
/// range, so no client socket and no port-0 bind can take it between now
/// and the server's own bind (the race of "bind port 0, release, reuse");
/// never handed out twice by this process; free when handed out.
pub fn free_port() -> u16 {
    let (ephemeral_low, _) = ephemeral_range();
    let high = ephemeral_low.saturating_sub(1).max(11_000);
    let low = 10_000u16;
    let span = u32::from(high - low);
    // Processes of one run start at different places of the range.
    let start = std::process::id() % span;
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let given = given.get_or_insert_with(HashSet::new);
    for step in 0..span {
        let port = low + ((start + step * 7919) % span) as u16;
        if given.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.insert(port);
            return port;
        }
    }
    panic!("no free port between {low} and {high}");
}

/// Wait until something accepts connections on `port`, at most `timeout`.
pub fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// Start tansu on `port`, its sqlite storage and `tansu.log` in `dir`, and
/// wait (20 s at most) until it accepts connections.
pub fn start_tansu(dir: &Path, port: u16) -> io::Result<Child> {
    let url = format!("tcp://127.0.0.1:{port}");
    let mut child = Command::new("tansu")
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
            "--storage-engine",
            "sqlite://tansu.db",
        ])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("tansu.log"))?)
        .spawn()?;
    if !wait_for_port(port, Duration::from_secs(20)) {
        let _ = child.kill();
        let _ = child.wait();
        let log = dir.join("tansu.log");
        return Err(io::Error::other(format!(
            "tansu did not start on port {port}; see {}",
            log.display()
        )));
    }
    Ok(child)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_free_distinct_and_outside_the_ephemeral_range() {
        let (low, _) = ephemeral_range();
        let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
        let distinct: HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len());
        assert!(ports.iter().all(|p| *p < low), "{ports:?} vs {low}");
        let port = ports[0];
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        assert!(wait_for_port(port, Duration::from_secs(1)));
        drop(listener);
    }
}
