//! Planning benchmark: a generated platform of 10,000 services and 50,000 dependency edges,
//! and the shipped BizOSaaS platform. Prints the time and the peak memory of planning.
//!
//! Run: `cargo bench --bench plan`. The figures go into `docs/performance.md`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rollout::model::{
    Config, ConfigParts, DockerSettings, FailurePolicy, HealthCheck, HealthTiming, Phase,
    PlatformSettings, PortMapping, Probe, Service, ServiceKind, ServiceName,
};
use rollout::plan::observed::ObservedHost;
use rollout::plan::{PlanOptions, Selection, plan};

/// Counts live and peak heap bytes.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        unsafe { System.dealloc(pointer, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const SERVICES: usize = 10_000;
const INFRASTRUCTURE: usize = 100;
const EDGES_PER_SERVICE: usize = 5;

/// A small deterministic generator (xorshift), so every run plans the same platform.
struct Random(u64);

impl Random {
    fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % bound as u64) as usize
    }
}

fn generated() -> Config {
    let mut random = Random(0x5eed_1234_abcd_ef01);
    let mut services = Vec::with_capacity(SERVICES);
    let mut phases: Vec<Phase> = (1..=4)
        .map(|number| Phase {
            number,
            name: format!("phase {number}"),
            description: None,
            services: Vec::new(),
            on_failure: FailurePolicy::Halt,
        })
        .collect();
    let mut edges = 0;
    for index in 0..SERVICES {
        let name = ServiceName::new(format!("s{index:05}"));
        let infrastructure = index < INFRASTRUCTURE;
        let phase = if infrastructure {
            None
        } else {
            Some(1 + ((index - INFRASTRUCTURE) * 4 / (SERVICES - INFRASTRUCTURE)) as u8)
        };
        let mut depends_on = BTreeSet::new();
        if index > 0 {
            // Deep and wide: mostly recent services (long chains), some far back (wide fan-in).
            let wanted = if infrastructure { 1 } else { EDGES_PER_SERVICE };
            while depends_on.len() < wanted.min(index) {
                let back = if random.below(4) == 0 {
                    random.below(index) + 1
                } else {
                    random.below(index.min(50)) + 1
                };
                let dependency = index - back;
                // Infrastructure (the first 100) only ever sees earlier infrastructure.
                depends_on.insert(dependency);
            }
        }
        edges += depends_on.len();
        if let Some(number) = phase {
            phases[usize::from(number) - 1].services.push(name.clone());
        }
        services.push(Service {
            name,
            title: format!("Service {index}"),
            description: None,
            kind: if infrastructure {
                ServiceKind::Infrastructure
            } else {
                ServiceKind::Service
            },
            category: Some("any".to_owned()),
            image: Some(format!("acme/s{index}:1")),
            ports: vec![PortMapping {
                host: 10_000 + index as u16,
                container: 8080,
            }],
            depends_on: depends_on
                .into_iter()
                .map(|d| ServiceName::new(format!("s{d:05}")))
                .collect(),
            env: BTreeMap::new(),
            secrets: BTreeSet::new(),
            range_exempt: None,
            health: HealthCheck {
                probe: Probe::Http {
                    paths: vec!["/health".to_owned()],
                },
                timing: HealthTiming::default(),
            },
            command: None,
            phase,
            demo: None,
        });
    }
    assert!(edges >= 49_000, "{edges} edges");
    println!("generated: {} services, {edges} edges", services.len());
    Config::new(ConfigParts {
        platform: PlatformSettings {
            name: "bench".to_owned(),
            network: "bench".to_owned(),
        },
        environment: None,
        docker: DockerSettings {
            host: None,
            bind_address: "127.0.0.1".to_owned(),
        },
        services,
        phases,
        ranges: Vec::new(),
        reconciliations: Vec::new(),
        demo: false,
        demo_image: None,
    })
}

fn process_peak_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Times `runs` plans; returns the median and the heap peak above the starting point.
fn measure(config: &Config, selection: Selection, runs: usize) -> (Duration, usize, usize) {
    let observed = ObservedHost::empty();
    let mut times = Vec::with_capacity(runs);
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let mut steps = 0;
    for _ in 0..runs {
        let started = Instant::now();
        let planned = plan(config, selection, &observed, PlanOptions::default());
        times.push(started.elapsed());
        steps = planned.steps().count();
        std::hint::black_box(planned);
    }
    times.sort();
    (
        times[times.len() / 2],
        PEAK.load(Ordering::Relaxed) - before,
        steps,
    )
}

fn main() {
    let config = generated();
    let (median, heap, steps) = measure(&config, Selection::All, 5);
    println!(
        "plan all of 10,000 services / 50,000 edges: median {:.1} ms over 5 runs, {steps} steps, planning heap peak {:.1} MiB",
        median.as_secs_f64() * 1000.0,
        heap as f64 / (1024.0 * 1024.0)
    );

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let started = Instant::now();
    let shipped = rollout::config::load(dir, None).expect("the shipped platform is valid");
    let load = started.elapsed();
    let (median, heap, steps) = measure(&shipped, Selection::All, 50);
    println!(
        "plan all of the shipped BizOSaaS platform: median {:.3} ms over 50 runs, {steps} steps, heap peak {:.2} MiB (loading and validating the config: {:.1} ms)",
        median.as_secs_f64() * 1000.0,
        heap as f64 / (1024.0 * 1024.0),
        load.as_secs_f64() * 1000.0
    );
    if let Some(peak) = process_peak_kib() {
        println!(
            "process peak resident memory: {:.1} MiB",
            peak as f64 / 1024.0
        );
    }
}
