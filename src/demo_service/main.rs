// rollout-demo: the stand-in service used by `rollout` demos and tests.
//
// This is ONE self-contained, std-only Rust file. The build script compiles it
// with plain `rustc` (no Cargo, no crates) into a statically linked binary:
//
//     rustc -O --edition 2021 -C target-feature=+crt-static \
//         --target x86_64-unknown-linux-gnu src/demo_service/main.rs -o rollout-demo
//
// and puts it into a `FROM scratch` image as `/rollout-demo` (the entrypoint).
// Every service of a demo platform runs this same image; what each instance
// does is chosen purely through environment variables, because a scratch image
// has no shell to script anything with.
//
// Unit tests for the pure parts live at the bottom and run natively with:
//
//     rustc --edition 2021 --test src/demo_service/main.rs -o /tmp/demo-test && /tmp/demo-test

//! Behaviour of `rollout-demo`.
//!
//! Running without arguments starts the stand-in service:
//!
//! 1. Prints `rollout-demo: <service> starting, ready after <n> ms` to stdout.
//! 2. Waits `ROLLOUT_DEMO_READY_AFTER_MS` milliseconds from process start.
//!    During that time it listens on NO port, so that a host-side check sees
//!    "not ready" (Docker's userland proxy accepts on the host port but closes
//!    the connection at once when nothing listens inside the container).
//! 3. Binds `0.0.0.0:<port>` for every port in `ROLLOUT_DEMO_PORTS`, then
//!    prints exactly one line `rollout-demo: <service> ready at <epoch ms> ms`
//!    to stdout (flushed; a benchmark reads it to measure detection latency).
//! 4. Serves forever. Each listener accepts in its own thread and each
//!    connection gets its own short-lived thread, which reads the request head
//!    (up to the blank line or 8 KiB, at most 2 s). If it looks like HTTP it
//!    answers `200 OK` with the body `<service> ok\n` for any path; if the peer
//!    sends nothing (a plain TCP probe) the connection is simply held open until
//!    the peer closes it or 2 s pass.
//!
//! Environment variables:
//!
//! * `ROLLOUT_DEMO_SERVICE` – service name for log lines and HTTP bodies
//!   (default `demo`).
//! * `ROLLOUT_DEMO_PORTS` – comma-separated ports, e.g. `8001` or
//!   `80,443,8080`; empty or unset means "listen on nothing, just run".
//! * `ROLLOUT_DEMO_READY_AFTER_MS` – readiness delay in ms (default 0).
//! * `ROLLOUT_DEMO_FAIL` – optional failure mode:
//!   * `never-ready` – never binds any port, runs forever;
//!   * `exit` – prints a line to stderr and exits 1 at once;
//!   * `crash-after:<ms>` – exits 2 that many ms after start, ready or not.
//!
//! SIGTERM and SIGINT end the process at once with status 0 (as PID 1 in a
//! container they would otherwise be ignored).
//!
//! Subcommands: `probe <port> [host]` connects to `host:port` (default host
//! `127.0.0.1`, IP addresses only) with a 1 s timeout and exits 0 on success,
//! 1 on failure; `--version` prints `rollout-demo 1`.
//!
//! Exit codes: 0 signal / success, 1 `exit` mode / bind or probe failure,
//! 2 `crash-after`, 64 bad configuration or usage.

use std::env;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const VERSION: &str = "1";
/// Exit status for configuration and usage errors (`EX_USAGE`).
const EXIT_USAGE: i32 = 64;
/// Longest request head we read before answering anyway.
const MAX_HEAD: usize = 8 * 1024;
/// How long a connection may take to send its request head (or stay silent).
const CONN_TIMEOUT: Duration = Duration::from_secs(2);
/// Connect timeout of the `probe` subcommand.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Stack size of connection threads; they need very little.
const CONN_STACK: usize = 64 * 1024;

/// What `ROLLOUT_DEMO_FAIL` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FailMode {
    /// Behave normally.
    None,
    /// Never become ready; run until stopped.
    NeverReady,
    /// Print an error and exit 1 immediately.
    Exit,
    /// Exit 2 this many milliseconds after start.
    CrashAfter(u64),
}

/// The whole configuration, read from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Config {
    service: String,
    ports: Vec<u16>,
    ready_after_ms: u64,
    fail: FailMode,
}

fn main() {
    // Taken first so that all delays count from process start.
    let start = Instant::now();
    let args: Vec<String> = env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        [] => run(start),
        ["--version" | "-V"] => out_line(&format!("rollout-demo {VERSION}")),
        ["probe", port] => probe(port, "127.0.0.1"),
        ["probe", port, host] => probe(port, host),
        _ => {
            eprintln!("usage: rollout-demo [--version | probe <port> [host]]");
            eprintln!(
                "(the service itself is configured through ROLLOUT_DEMO_* environment variables)"
            );
            process::exit(EXIT_USAGE);
        }
    }
}

// ---------------------------------------------------------------------------
// Configuration parsing (pure, unit-tested)
// ---------------------------------------------------------------------------

/// Parses `ROLLOUT_DEMO_PORTS`: comma-separated ports, whitespace and empty
/// items ignored, duplicates dropped (order kept). Port 0 is rejected.
fn parse_ports(value: &str) -> Result<Vec<u16>, String> {
    let mut ports = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let port: u16 = item
            .parse()
            .map_err(|_| format!("invalid port {item:?} (expected 1-65535)"))?;
        if port == 0 {
            return Err("invalid port \"0\" (expected 1-65535)".to_string());
        }
        if !ports.contains(&port) {
            ports.push(port);
        }
    }
    Ok(ports)
}

/// Parses a millisecond count; `None` or blank gives `default`.
fn parse_ms(value: Option<&str>, default: u64) -> Result<u64, String> {
    match value.map(str::trim) {
        None | Some("") => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| format!("invalid milliseconds {v:?} (expected a non-negative integer)")),
    }
}

/// Parses `ROLLOUT_DEMO_FAIL`; `None` or blank means no failure.
fn parse_fail(value: Option<&str>) -> Result<FailMode, String> {
    match value.map(str::trim) {
        None | Some("") => Ok(FailMode::None),
        Some("never-ready") => Ok(FailMode::NeverReady),
        Some("exit") => Ok(FailMode::Exit),
        Some(v) => match v.strip_prefix("crash-after:") {
            Some(ms) if !ms.trim().is_empty() => parse_ms(Some(ms), 0).map(FailMode::CrashAfter),
            _ => Err(format!(
                "unknown fail mode {v:?} (expected never-ready, exit or crash-after:<ms>)"
            )),
        },
    }
}

/// Builds the configuration from a variable lookup function, so that tests
/// need not touch the process environment.
fn config_from(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
    let with_name = |name: &str, e: String| format!("{name}: {e}");
    let service = lookup("ROLLOUT_DEMO_SERVICE")
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "demo".to_string());
    let ports = parse_ports(&lookup("ROLLOUT_DEMO_PORTS").unwrap_or_default())
        .map_err(|e| with_name("ROLLOUT_DEMO_PORTS", e))?;
    let ready_after_ms = parse_ms(lookup("ROLLOUT_DEMO_READY_AFTER_MS").as_deref(), 0)
        .map_err(|e| with_name("ROLLOUT_DEMO_READY_AFTER_MS", e))?;
    let fail = parse_fail(lookup("ROLLOUT_DEMO_FAIL").as_deref())
        .map_err(|e| with_name("ROLLOUT_DEMO_FAIL", e))?;
    Ok(Config {
        service,
        ports,
        ready_after_ms,
        fail,
    })
}

/// Reads the configuration from the real environment. A variable that is set
/// but not valid UTF-8 is an error rather than silently ignored.
fn config_from_env() -> Result<Config, String> {
    for (name, value) in env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("ROLLOUT_DEMO_") && value.to_str().is_none() {
            return Err(format!("{name}: value is not valid UTF-8"));
        }
    }
    config_from(|name| env::var(name).ok())
}

// ---------------------------------------------------------------------------
// The service
// ---------------------------------------------------------------------------

fn run(start: Instant) {
    signals::exit_on_term();

    let config = config_from_env().unwrap_or_else(|e| {
        eprintln!("rollout-demo: {e}");
        process::exit(EXIT_USAGE);
    });
    let service = config.service.as_str();

    match config.fail {
        FailMode::Exit => {
            eprintln!("rollout-demo: {service} failing on purpose (ROLLOUT_DEMO_FAIL=exit)");
            process::exit(1);
        }
        FailMode::CrashAfter(ms) => {
            let name = config.service.clone();
            // If the thread cannot be started the crash would silently not
            // happen, which would break the demo: treat that as fatal.
            let spawned = thread::Builder::new().name("crash".into()).spawn(move || {
                thread::sleep(remaining(start, ms));
                eprintln!("rollout-demo: {name} crashing on purpose after {ms} ms (ROLLOUT_DEMO_FAIL=crash-after)");
                process::exit(2);
            });
            if let Err(e) = spawned {
                eprintln!("rollout-demo: cannot start crash timer: {e}");
                process::exit(1);
            }
        }
        FailMode::None | FailMode::NeverReady => {}
    }

    out_line(&format!(
        "rollout-demo: {service} starting, ready after {} ms",
        config.ready_after_ms
    ));

    if config.fail == FailMode::NeverReady {
        eprintln!(
            "rollout-demo: {service} will never become ready (ROLLOUT_DEMO_FAIL=never-ready)"
        );
        park_forever();
    }

    thread::sleep(remaining(start, config.ready_after_ms));

    // Bind everything first, so the ready line means "all ports accept".
    let mut listeners = Vec::with_capacity(config.ports.len());
    for &port in &config.ports {
        match TcpListener::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)) {
            Ok(listener) => listeners.push((port, listener)),
            Err(e) => {
                eprintln!("rollout-demo: {service} cannot listen on 0.0.0.0:{port}: {e}");
                process::exit(1);
            }
        }
    }
    out_line(&format!(
        "rollout-demo: {service} ready at {} ms",
        epoch_ms()
    ));

    for (port, listener) in listeners {
        let name = config.service.clone();
        let spawned = thread::Builder::new()
            .name(format!("listen-{port}"))
            .spawn(move || accept_loop(&listener, &name));
        if let Err(e) = spawned {
            eprintln!("rollout-demo: {service} cannot start listener thread for port {port}: {e}");
            process::exit(1);
        }
    }
    park_forever();
}

/// Time left until `ms` milliseconds after `start` (zero if already past).
fn remaining(start: Instant, ms: u64) -> Duration {
    Duration::from_millis(ms).saturating_sub(start.elapsed())
}

/// Milliseconds since the Unix epoch (0 if the clock is before 1970).
fn epoch_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// Writes one line to stdout and flushes it. Unlike `println!` this does not
/// panic when stdout is gone; there is nobody to tell in that case anyway.
fn out_line(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

fn park_forever() -> ! {
    loop {
        thread::park();
    }
}

/// Accepts connections forever, handing each to its own thread.
fn accept_loop(listener: &TcpListener, service: &str) {
    loop {
        match listener.accept() {
            Ok((stream, _peer)) => {
                let name = service.to_string();
                // If no thread can be created the connection is just dropped
                // (closed); the service itself keeps going.
                let _ = thread::Builder::new()
                    .stack_size(CONN_STACK)
                    .spawn(move || handle_connection(stream, &name, CONN_TIMEOUT));
            }
            Err(e) => {
                // E.g. out of file descriptors: back off instead of spinning.
                eprintln!("rollout-demo: {service} accept failed: {e}");
                thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Serves one connection: reads the request head for at most `timeout`, then
/// answers it if it is HTTP. Silent peers are held until they close or the
/// timeout passes. All I/O errors just end the connection.
fn handle_connection(mut stream: TcpStream, service: &str, timeout: Duration) {
    let head = read_head(&mut stream, timeout);
    if let Some(method) = http_method(&head) {
        let response = http_response(service, method == "HEAD");
        let _ = stream.write_all(&response).and_then(|()| stream.flush());
        let _ = stream.shutdown(Shutdown::Write);
    }
    // Dropping the stream closes the connection.
}

/// Reads until the end of the request head, `MAX_HEAD` bytes, EOF, an error or
/// `timeout` in total, and returns what arrived.
fn read_head(stream: &mut TcpStream, timeout: Duration) -> Vec<u8> {
    let deadline = Instant::now() + timeout;
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while head.len() < MAX_HEAD && !head_complete(&head) {
        let left = deadline.saturating_duration_since(Instant::now());
        // A zero read timeout is an error for set_read_timeout, so stop here.
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&chunk[..n.min(MAX_HEAD - head.len())]),
            // Interrupted: just retry. Timed out, reset, ...: give up.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    head
}

/// True once `buf` contains the blank line ending an HTTP request head.
fn head_complete(buf: &[u8]) -> bool {
    buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n")
}

/// The method if `buf` starts like an HTTP request (`GET /...`): 1 to 16
/// uppercase ASCII letters followed by a space.
fn http_method(buf: &[u8]) -> Option<&str> {
    let space = buf.iter().take(17).position(|&b| b == b' ')?;
    let token = &buf[..space];
    if token.is_empty() || !token.iter().all(u8::is_ascii_uppercase) {
        return None;
    }
    std::str::from_utf8(token).ok()
}

/// The complete response: 200 with `<service> ok\n` (no body for HEAD).
fn http_response(service: &str, head_only: bool) -> Vec<u8> {
    let body = format!("{service} ok\n");
    let mut response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if !head_only {
        response.push_str(&body);
    }
    response.into_bytes()
}

// ---------------------------------------------------------------------------
// `probe` subcommand
// ---------------------------------------------------------------------------

/// Parses the `probe` arguments into an address. Only IP addresses are
/// accepted (plus `localhost`): a scratch image has no resolver config.
fn probe_addr(port: &str, host: &str) -> Result<SocketAddr, String> {
    let port: u16 = match port.trim().parse() {
        Ok(p) if p != 0 => p,
        _ => return Err(format!("invalid port {port:?} (expected 1-65535)")),
    };
    let host = host.trim();
    let ip: IpAddr = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        bare.parse()
            .map_err(|_| format!("invalid host {host:?} (expected an IP address)"))?
    };
    Ok(SocketAddr::new(ip, port))
}

fn probe(port: &str, host: &str) -> ! {
    let addr = probe_addr(port, host).unwrap_or_else(|e| {
        eprintln!("rollout-demo probe: {e}");
        process::exit(EXIT_USAGE);
    });
    match TcpStream::connect_timeout(&addr, PROBE_TIMEOUT) {
        Ok(_) => process::exit(0),
        Err(e) => {
            eprintln!("rollout-demo probe: {addr}: {e}");
            process::exit(1);
        }
    }
}

// ---------------------------------------------------------------------------
// Signals
// ---------------------------------------------------------------------------

/// The only unsafe code: installing SIGTERM/SIGINT handlers via libc.
mod signals {
    use std::os::raw::c_int;

    const SIGINT: c_int = 2; // Linux value
    const SIGTERM: c_int = 15; // Linux value
    /// `SIG_ERR` is `(sighandler_t) -1`.
    const SIG_ERR: usize = usize::MAX;

    // Both symbols come from glibc, which std already links (statically with
    // `+crt-static`), so no extra library is needed.
    unsafe extern "C" {
        /// `sighandler_t signal(int signum, sighandler_t handler);`
        fn signal(signum: c_int, handler: extern "C" fn(c_int)) -> usize;
        /// `void _exit(int status);` - async-signal-safe, unlike `exit`.
        fn _exit(status: c_int) -> !;
    }

    extern "C" fn on_term(_signum: c_int) {
        // SAFETY: `_exit` is async-signal-safe and takes no pointers. It
        // skips atexit handlers and stdio flushing, which is fine: every line
        // we print is flushed when written.
        unsafe { _exit(0) }
    }

    /// Makes SIGTERM and SIGINT end the process at once with status 0. As
    /// PID 1 in a container both would otherwise be ignored.
    pub fn exit_on_term() {
        for (signum, name) in [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")] {
            // SAFETY: `on_term` is a valid `extern "C" fn(c_int)` for the
            // whole program lifetime and only calls `_exit`, which is
            // async-signal-safe; `signum` is a valid catchable signal.
            let previous = unsafe { signal(signum, on_term) };
            if previous == SIG_ERR {
                eprintln!("rollout-demo: cannot install {name} handler");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn ports_parse() {
        assert_eq!(parse_ports(""), Ok(vec![]));
        assert_eq!(parse_ports("  "), Ok(vec![]));
        assert_eq!(parse_ports("8001"), Ok(vec![8001]));
        assert_eq!(parse_ports("80,443,8080"), Ok(vec![80, 443, 8080]));
        assert_eq!(parse_ports(" 80 , 443 ,"), Ok(vec![80, 443]));
        assert_eq!(parse_ports("80,,443"), Ok(vec![80, 443]));
        assert_eq!(parse_ports("443,80,443"), Ok(vec![443, 80]));
        assert_eq!(parse_ports("65535"), Ok(vec![65535]));
    }

    #[test]
    fn ports_reject_bad_values() {
        for bad in ["0", "65536", "-1", "http", "80;443", "80 443", "8o"] {
            assert!(parse_ports(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn milliseconds_parse() {
        assert_eq!(parse_ms(None, 0), Ok(0));
        assert_eq!(parse_ms(Some(""), 7), Ok(7));
        assert_eq!(parse_ms(Some(" 500 "), 0), Ok(500));
        assert_eq!(parse_ms(Some("0"), 9), Ok(0));
        assert_eq!(parse_ms(Some("18446744073709551615"), 0), Ok(u64::MAX));
        for bad in ["-1", "1.5", "1s", "abc", "18446744073709551616"] {
            assert!(
                parse_ms(Some(bad), 0).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn fail_modes_parse() {
        assert_eq!(parse_fail(None), Ok(FailMode::None));
        assert_eq!(parse_fail(Some("")), Ok(FailMode::None));
        assert_eq!(parse_fail(Some("never-ready")), Ok(FailMode::NeverReady));
        assert_eq!(parse_fail(Some(" exit ")), Ok(FailMode::Exit));
        assert_eq!(
            parse_fail(Some("crash-after:2000")),
            Ok(FailMode::CrashAfter(2000))
        );
        assert_eq!(
            parse_fail(Some("crash-after:0")),
            Ok(FailMode::CrashAfter(0))
        );
        for bad in [
            "crash",
            "crash-after",
            "crash-after:",
            "crash-after:x",
            "crash-after:-5",
            "EXIT",
            "never_ready",
            "exit:1",
        ] {
            assert!(parse_fail(Some(bad)).is_err(), "{bad:?} should be rejected");
        }
    }

    fn config_of(vars: &[(&str, &str)]) -> Result<Config, String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        config_from(|name| map.get(name).cloned())
    }

    #[test]
    fn config_defaults() {
        let config = config_of(&[]).unwrap();
        assert_eq!(
            config,
            Config {
                service: "demo".into(),
                ports: vec![],
                ready_after_ms: 0,
                fail: FailMode::None
            }
        );
    }

    #[test]
    fn config_full() {
        let config = config_of(&[
            ("ROLLOUT_DEMO_SERVICE", "api"),
            ("ROLLOUT_DEMO_PORTS", "80,443"),
            ("ROLLOUT_DEMO_READY_AFTER_MS", "1500"),
            ("ROLLOUT_DEMO_FAIL", "crash-after:3000"),
        ])
        .unwrap();
        assert_eq!(
            config,
            Config {
                service: "api".into(),
                ports: vec![80, 443],
                ready_after_ms: 1500,
                fail: FailMode::CrashAfter(3000),
            }
        );
    }

    #[test]
    fn config_errors_name_the_variable() {
        let err = config_of(&[("ROLLOUT_DEMO_FAIL", "sometimes")]).unwrap_err();
        assert!(err.starts_with("ROLLOUT_DEMO_FAIL:"), "{err}");
        let err = config_of(&[("ROLLOUT_DEMO_PORTS", "x")]).unwrap_err();
        assert!(err.starts_with("ROLLOUT_DEMO_PORTS:"), "{err}");
        let err = config_of(&[("ROLLOUT_DEMO_READY_AFTER_MS", "soon")]).unwrap_err();
        assert!(err.starts_with("ROLLOUT_DEMO_READY_AFTER_MS:"), "{err}");
    }

    #[test]
    fn http_detection() {
        assert_eq!(http_method(b"GET / HTTP/1.1\r\n"), Some("GET"));
        assert_eq!(http_method(b"HEAD /x HTTP/1.0\r\n\r\n"), Some("HEAD"));
        assert_eq!(http_method(b"OPTIONS * HTTP/1.1"), Some("OPTIONS"));
        assert_eq!(http_method(b""), None);
        assert_eq!(http_method(b" GET /"), None);
        assert_eq!(http_method(b"get / HTTP/1.1"), None);
        assert_eq!(http_method(b"\x16\x03\x01\x02\x00"), None); // TLS hello
        assert_eq!(http_method(b"GET"), None);
        assert_eq!(http_method(b"ABCDEFGHIJKLMNOPQ /"), None); // token too long
        assert_eq!(http_method(&[0xff; 64]), None);
    }

    #[test]
    fn head_end_detection() {
        assert!(head_complete(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(head_complete(b"GET / HTTP/1.0\n\n"));
        assert!(!head_complete(b"GET / HTTP/1.1\r\nHost: x\r\n"));
        assert!(!head_complete(b""));
    }

    #[test]
    fn response_shape() {
        let full = String::from_utf8(http_response("api", false)).unwrap();
        assert!(full.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(full.contains("\r\nContent-Type: text/plain\r\n"));
        assert!(full.contains("\r\nContent-Length: 7\r\n"));
        assert!(full.contains("\r\nConnection: close\r\n"));
        assert!(full.ends_with("\r\n\r\napi ok\n"));
        let head = String::from_utf8(http_response("api", true)).unwrap();
        assert!(head.ends_with("\r\n\r\n"));
        assert!(head.contains("\r\nContent-Length: 7\r\n"));
    }

    #[test]
    fn probe_addresses() {
        assert_eq!(
            probe_addr("8001", "127.0.0.1"),
            Ok("127.0.0.1:8001".parse().unwrap())
        );
        assert_eq!(
            probe_addr("80", "localhost"),
            Ok("127.0.0.1:80".parse().unwrap())
        );
        assert_eq!(probe_addr("80", "::1"), Ok("[::1]:80".parse().unwrap()));
        assert_eq!(probe_addr("80", "[::1]"), Ok("[::1]:80".parse().unwrap()));
        assert!(probe_addr("0", "127.0.0.1").is_err());
        assert!(probe_addr("http", "127.0.0.1").is_err());
        assert!(probe_addr("80", "example.com").is_err());
    }

    #[test]
    fn remaining_saturates() {
        let start = Instant::now();
        assert_eq!(remaining(start, 0), Duration::ZERO);
        assert!(remaining(start, 60_000) > Duration::from_secs(59));
        assert!(remaining(start, u64::MAX) > Duration::from_secs(1));
    }

    /// Runs `handle_connection` on a loopback connection and returns what
    /// the client receives after sending `request`.
    fn exchange(request: &[u8], timeout: Duration) -> Vec<u8> {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            handle_connection(stream, "svc", timeout);
        });
        let mut client = TcpStream::connect(addr).unwrap();
        client.write_all(request).unwrap();
        let mut reply = Vec::new();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        client.read_to_end(&mut reply).unwrap();
        server.join().unwrap();
        reply
    }

    #[test]
    fn serves_http_on_loopback() {
        let reply = exchange(
            b"GET /any/path?x=1 HTTP/1.1\r\nHost: a\r\n\r\n",
            CONN_TIMEOUT,
        );
        let reply = String::from_utf8(reply).unwrap();
        assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
        assert!(reply.ends_with("svc ok\n"), "{reply}");
    }

    #[test]
    fn silent_peer_is_held_then_closed() {
        let started = Instant::now();
        let reply = exchange(b"", Duration::from_millis(200));
        assert!(reply.is_empty());
        assert!(started.elapsed() >= Duration::from_millis(200));
    }

    #[test]
    fn garbage_gets_no_answer() {
        let reply = exchange(b"\x00\x01 hello\n\n", Duration::from_millis(200));
        assert!(reply.is_empty());
    }
}
