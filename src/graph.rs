//! The dependency graph of a platform: petgraph behind domain methods.
//!
//! Pure: no IO, no clock. Nothing outside this module sees petgraph. An edge runs from a
//! dependency to its dependent, so a topological order starts with what has no
//! dependencies.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::fmt;

use petgraph::Direction;
use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::model::ServiceName;

/// A dependency cycle, as the path `a -> b -> c -> a` ("a depends on b, which depends on c, …").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle(pub Vec<ServiceName>);

impl fmt::Display for Cycle {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(ServiceName::as_str).collect();
        write!(formatter, "{} -> {}", names.join(" -> "), names[0])
    }
}

#[derive(Debug, Clone, Default)]
pub struct DependencyGraph {
    graph: DiGraph<ServiceName, ()>,
    index: HashMap<ServiceName, NodeIndex>,
}

impl DependencyGraph {
    /// Builds the graph from services and their `depends_on` lists. A dependency that is not
    /// among the services is left out: validation reports it.
    pub fn new<'a>(
        services: impl IntoIterator<Item = (&'a ServiceName, &'a [ServiceName])>,
    ) -> Self {
        let services: Vec<_> = services.into_iter().collect();
        let mut graph = DiGraph::with_capacity(services.len(), services.len() * 4);
        let mut index = HashMap::with_capacity(services.len());
        for (name, _) in &services {
            index
                .entry((*name).clone())
                .or_insert_with(|| graph.add_node((*name).clone()));
        }
        for (name, dependencies) in &services {
            let dependent = index[*name];
            for dependency in dependencies.iter() {
                if let Some(&dependency) = index.get(dependency) {
                    graph.update_edge(dependency, dependent, ());
                }
            }
        }
        Self { graph, index }
    }

    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// The direct dependencies of `name`, sorted by name.
    pub fn dependencies_of(&self, name: &str) -> Vec<&ServiceName> {
        self.neighbours(name, Direction::Incoming)
    }

    /// The services that depend directly on `name`, sorted by name.
    pub fn dependents_of(&self, name: &str) -> Vec<&ServiceName> {
        self.neighbours(name, Direction::Outgoing)
    }

    fn neighbours(&self, name: &str, direction: Direction) -> Vec<&ServiceName> {
        let Some(&node) = self.index.get(name) else {
            return Vec::new();
        };
        let mut found: Vec<_> = self
            .graph
            .neighbors_directed(node, direction)
            .map(|neighbour| &self.graph[neighbour])
            .collect();
        found.sort();
        found
    }

    /// `roots` and everything they depend on, directly or not.
    pub fn with_dependencies<'a>(
        &self,
        roots: impl IntoIterator<Item = &'a ServiceName>,
    ) -> BTreeSet<ServiceName> {
        let mut seen = vec![false; self.graph.node_count()];
        let mut queue: VecDeque<NodeIndex> = roots
            .into_iter()
            .filter_map(|root| self.index.get(root).copied())
            .collect();
        let mut found = BTreeSet::new();
        while let Some(node) = queue.pop_front() {
            if std::mem::replace(&mut seen[node.index()], true) {
                continue;
            }
            found.insert(self.graph[node].clone());
            queue.extend(self.graph.neighbors_directed(node, Direction::Incoming));
        }
        found
    }

    /// Every cycle, one per strongly connected component, each as a whole path starting
    /// at its alphabetically first service. Sorted, so the result is stable.
    pub fn cycles(&self) -> Vec<Cycle> {
        let mut cycles: Vec<Cycle> = tarjan_scc(&self.graph)
            .into_iter()
            .filter(|component| {
                component.len() > 1 || self.graph.contains_edge(component[0], component[0])
            })
            .map(|component| self.cycle_within(&component))
            .collect();
        cycles.sort_by(|left, right| left.0.cmp(&right.0));
        cycles
    }

    /// The shortest cycle through the component's first-named service, following
    /// "depends on" edges that stay inside the component.
    fn cycle_within(&self, component: &[NodeIndex]) -> Cycle {
        let members: BTreeSet<NodeIndex> = component.iter().copied().collect();
        let start = *component
            .iter()
            .min_by_key(|node| &self.graph[**node])
            .expect("a component is never empty");
        let mut came_from: HashMap<NodeIndex, NodeIndex> = HashMap::new();
        let mut queue = VecDeque::from([start]);
        while let Some(node) = queue.pop_front() {
            let mut dependencies: Vec<NodeIndex> = self
                .graph
                .neighbors_directed(node, Direction::Incoming)
                .filter(|dependency| members.contains(dependency))
                .collect();
            dependencies.sort_by_key(|dependency| &self.graph[*dependency]);
            for dependency in dependencies {
                if dependency == start {
                    let mut path = vec![node];
                    while let Some(&previous) = came_from.get(path.last().expect("non-empty")) {
                        path.push(previous);
                    }
                    path.reverse();
                    return Cycle(path.iter().map(|n| self.graph[*n].clone()).collect());
                }
                if dependency != start && !came_from.contains_key(&dependency) {
                    came_from.insert(dependency, node);
                    queue.push_back(dependency);
                }
            }
        }
        unreachable!("a strongly connected component always has a cycle through each member")
    }

    /// A topological order: dependencies before dependents. Among services that are ready
    /// at the same time, the smallest `rank` comes first. Fails on a cycle.
    pub fn order<K: Ord>(
        &self,
        rank: impl Fn(&ServiceName) -> K,
    ) -> Result<Vec<ServiceName>, Cycle> {
        self.order_of(|_| true, rank)
    }

    /// [`order`](Self::order) of the services `include` accepts, counting only the edges
    /// between them.
    pub fn order_of<K: Ord>(
        &self,
        include: impl Fn(&ServiceName) -> bool,
        rank: impl Fn(&ServiceName) -> K,
    ) -> Result<Vec<ServiceName>, Cycle> {
        let included: Vec<bool> = self
            .graph
            .node_indices()
            .map(|node| include(&self.graph[node]))
            .collect();
        let members = included.iter().filter(|included| **included).count();
        let mut waiting: Vec<usize> = self
            .graph
            .node_indices()
            .map(|node| {
                self.graph
                    .neighbors_directed(node, Direction::Incoming)
                    .filter(|dependency| included[dependency.index()])
                    .count()
            })
            .collect();
        let mut ready: BinaryHeap<Reverse<(K, NodeIndex)>> = self
            .graph
            .node_indices()
            .filter(|node| included[node.index()] && waiting[node.index()] == 0)
            .map(|node| Reverse((rank(&self.graph[node]), node)))
            .collect();
        let mut order = Vec::with_capacity(members);
        while let Some(Reverse((_, node))) = ready.pop() {
            order.push(self.graph[node].clone());
            for dependent in self.graph.neighbors_directed(node, Direction::Outgoing) {
                if !included[dependent.index()] {
                    continue;
                }
                waiting[dependent.index()] -= 1;
                if waiting[dependent.index()] == 0 {
                    ready.push(Reverse((rank(&self.graph[dependent]), dependent)));
                }
            }
        }
        if order.len() == members {
            Ok(order)
        } else {
            Err(self
                .cycles()
                .into_iter()
                .next()
                .expect("an incomplete order means a cycle"))
        }
    }

    /// A path of "depends on" edges from `from` down to `to`, both included, if one exists.
    pub fn dependency_path(&self, from: &str, to: &str) -> Option<Vec<ServiceName>> {
        let (&start, &goal) = (self.index.get(from)?, self.index.get(to)?);
        let mut came_from: HashMap<NodeIndex, NodeIndex> = HashMap::new();
        let mut queue = VecDeque::from([start]);
        while let Some(node) = queue.pop_front() {
            if node == goal {
                let mut path = vec![goal];
                while let Some(&previous) = came_from.get(path.last().expect("non-empty")) {
                    path.push(previous);
                }
                path.reverse();
                return Some(path.iter().map(|n| self.graph[*n].clone()).collect());
            }
            for dependency in self.graph.neighbors_directed(node, Direction::Incoming) {
                if dependency != start && !came_from.contains_key(&dependency) {
                    came_from.insert(dependency, node);
                    queue.push_back(dependency);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn name(text: &str) -> ServiceName {
        ServiceName::new(text)
    }

    fn graph(edges: &[(&str, &[&str])]) -> DependencyGraph {
        let owned: Vec<(ServiceName, Vec<ServiceName>)> = edges
            .iter()
            .map(|(service, dependencies)| {
                (
                    name(service),
                    dependencies.iter().map(|d| name(d)).collect(),
                )
            })
            .collect();
        DependencyGraph::new(owned.iter().map(|(s, d)| (s, d.as_slice())))
    }

    #[test]
    fn orders_dependencies_first_and_breaks_ties_by_rank() {
        let graph = graph(&[
            ("campaign", &["brain-ai", "auth"]),
            ("auth", &["postgres"]),
            ("brain-ai", &["postgres"]),
            ("postgres", &[]),
        ]);
        let order = graph.order(|service| service.as_str().to_owned()).unwrap();
        let order: Vec<&str> = order.iter().map(ServiceName::as_str).collect();
        assert_eq!(order, ["postgres", "auth", "brain-ai", "campaign"]);
    }

    #[test]
    fn reports_the_whole_cycle_path() {
        let graph = graph(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &["a"])]);
        let cycles = graph.cycles();
        assert_eq!(cycles.len(), 1);
        assert_eq!(cycles[0].to_string(), "a -> b -> c -> a");
        assert!(graph.order(|s| s.clone()).is_err());
    }

    #[test]
    fn reports_a_self_dependency() {
        let graph = graph(&[("a", &["a"])]);
        assert_eq!(graph.cycles()[0].to_string(), "a -> a");
    }

    #[test]
    fn finds_dependency_closure_and_path() {
        let graph = graph(&[
            ("campaign", &["brain-ai"]),
            ("brain-ai", &["postgres"]),
            ("postgres", &[]),
            ("other", &[]),
        ]);
        let closure = graph.with_dependencies([&name("campaign")]);
        assert_eq!(closure.len(), 3);
        assert!(!closure.contains("other"));
        let path = graph.dependency_path("campaign", "postgres").unwrap();
        assert_eq!(path, [name("campaign"), name("brain-ai"), name("postgres")]);
        assert_eq!(graph.dependency_path("postgres", "campaign"), None);
        assert_eq!(graph.dependents_of("postgres"), [&name("brain-ai")]);
    }

    /// A random DAG: service i may only depend on services with a smaller index.
    fn random_dag() -> impl Strategy<Value = Vec<Vec<usize>>> {
        (1usize..40).prop_flat_map(|size| {
            (0..size)
                .map(|i| proptest::collection::vec(0..i.max(1), 0..=i.min(4)))
                .collect::<Vec<_>>()
                .prop_map(|lists| {
                    lists
                        .into_iter()
                        .enumerate()
                        .map(|(i, list)| list.into_iter().filter(|&d| d < i).collect())
                        .collect()
                })
        })
    }

    fn build(lists: &[Vec<usize>]) -> DependencyGraph {
        let owned: Vec<(ServiceName, Vec<ServiceName>)> = lists
            .iter()
            .enumerate()
            .map(|(i, list)| {
                (
                    name(&format!("s{i}")),
                    list.iter().map(|d| name(&format!("s{d}"))).collect(),
                )
            })
            .collect();
        DependencyGraph::new(owned.iter().map(|(s, d)| (s, d.as_slice())))
    }

    proptest! {
        #[test]
        fn every_dependency_comes_before_its_dependents(lists in random_dag(), seed in any::<u64>()) {
            let graph = build(&lists);
            // Any rank must still give a valid order.
            let order = graph.order(|s| (s.as_str().len() as u64).wrapping_mul(seed) ^ seed).unwrap();
            prop_assert_eq!(order.len(), lists.len());
            let position: HashMap<&str, usize> =
                order.iter().enumerate().map(|(p, s)| (s.as_str(), p)).collect();
            for (i, list) in lists.iter().enumerate() {
                for dependency in list {
                    let (before, after) = (format!("s{}", dependency), format!("s{}", i));
                    prop_assert!(position[before.as_str()] < position[after.as_str()]);
                }
            }
            prop_assert!(graph.cycles().is_empty());
        }

        #[test]
        fn every_graph_with_a_cycle_is_rejected(lists in random_dag(), from in any::<prop::sample::Index>(), to in any::<prop::sample::Index>()) {
            // Add a back edge from a lower index to a higher-or-equal one: that closes a cycle
            // whenever a path leads back, and always when from == to.
            let mut lists = lists;
            let size = lists.len();
            let (low, high) = { let a = from.index(size); let b = to.index(size); (a.min(b), a.max(b)) };
            // Make sure a path high -> ... -> low exists: high depends on low directly.
            lists[high].push(low);
            lists[low].push(high);
            let graph = build(&lists);
            prop_assert!(graph.order(|s| s.clone()).is_err());
            let cycles = graph.cycles();
            prop_assert!(!cycles.is_empty());
            // Every reported cycle is a real path of edges that closes on itself.
            for cycle in cycles {
                let path = &cycle.0;
                for (position, service) in path.iter().enumerate() {
                    let next = &path[(position + 1) % path.len()];
                    prop_assert!(graph.dependencies_of(service.as_str()).contains(&next));
                }
            }
        }
    }
}
