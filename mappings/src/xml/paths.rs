//! A small id for each element path, so that the readers' checkers work out
//! once per path what they would otherwise work out per element.
//!
//! Why: the readers and their checkers (structure, syntax binding, Factur-X
//! profile, positions) each decide what an element is by its path relative
//! to the root, and comparing, hashing and splitting those strings at every
//! element start and end was most of the reading time of a large invoice
//! (issue 16, BENCHMARKS.md). The driver gives every element a [`Node`]: the
//! same path always gets the same node, found from its parent's node and its
//! local name by one hash of a short name. A checker keeps, in a
//! [`PathMemo`], what a path means to it (its rules, its term), computed the
//! first time the path is met.
//!
//! The tree of paths lives per thread across documents (a flow of small
//! invoices meets the same paths again and again), bounded: past
//! [`MAX_NODES`] paths, new ones get no id ([`Node::NONE`]: the checkers
//! then work it out from the path, as before), and the tree is dropped after
//! that document; the next one starts a new tree, with a new generation, and
//! every memo of the old one is cleared when it first sees a node of the new.

use std::cell::Cell;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU32, Ordering};

/// Most paths one thread's tree holds (the UBL and CII paths a platform
/// meets are a few thousand; unknown elements add theirs).
pub const MAX_NODES: usize = 1 << 16;

/// An element path's id in its thread's tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    /// Which tree (0: none).
    generation: u32,
    id: u32,
}

impl Node {
    /// A path without an id (the tree is full, or a test built the element).
    pub const NONE: Node = Node {
        generation: 0,
        id: u32::MAX,
    };

    fn is_none(self) -> bool {
        self.generation == 0
    }
}

/// The keys are already hashes.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// One path: its parent, its local name (a range of the tree's names) and
/// two guesses at the next element, which a document of repeated structure
/// (lines, parties) nearly always confirms with one name comparison.
struct NodeRec {
    parent: u32,
    name: (u32, u32),
    /// The first child seen last time this element had children.
    first: u32,
    /// The sibling that followed this element last time.
    follow: u32,
}

const NO_GUESS: u32 = u32::MAX;

/// One thread's paths.
pub(super) struct Tree {
    generation: u32,
    /// Hash of (parent, local name) -> node id; checked against the node
    /// on a hit (a collision gives no id, never a wrong one).
    index: HashMap<u64, u32, BuildHasherDefault<Identity>>,
    nodes: Vec<NodeRec>,
    names: String,
}

static GENERATIONS: AtomicU32 = AtomicU32::new(1);

thread_local! {
    static TREE: Cell<Option<Box<Tree>>> = const { Cell::new(None) };
}

const ROOT: u32 = 0;

impl Tree {
    fn new() -> Box<Tree> {
        let generation = GENERATIONS.fetch_add(1, Ordering::Relaxed).max(1);
        let mut t = Box::new(Tree {
            generation,
            index: HashMap::default(),
            nodes: Vec::with_capacity(256),
            names: String::with_capacity(4096),
        });
        // The root element: the empty path.
        t.nodes.push(NodeRec {
            parent: u32::MAX,
            name: (0, 0),
            first: NO_GUESS,
            follow: NO_GUESS,
        });
        t
    }

    /// This thread's tree (a new one if another document holds it).
    pub fn take() -> Box<Tree> {
        TREE.with(|t| t.take()).unwrap_or_else(Tree::new)
    }

    /// Give the tree back for the thread's next document, unless it is full.
    pub fn put_back(self: Box<Tree>) {
        if self.nodes.len() < MAX_NODES {
            TREE.with(|t| t.set(Some(self)));
        }
    }

    pub fn root(&self) -> Node {
        Node {
            generation: self.generation,
            id: ROOT,
        }
    }

    fn is(&self, id: u32, parent: u32, local: &str) -> bool {
        let n = &self.nodes[id as usize];
        n.parent == parent && &self.names[n.name.0 as usize..n.name.1 as usize] == local
    }

    /// The node of the element `local` (as it appears in the path, `~`
    /// included) under `parent`, whose previous child was `previous`
    /// ([`Node::NONE`] for its first).
    pub fn child(&mut self, parent: Node, previous: Node, local: &str) -> Node {
        if parent.is_none() || parent.generation != self.generation {
            return Node::NONE;
        }
        let previous =
            (!previous.is_none() && previous.generation == self.generation).then_some(previous.id);
        let guess = match previous {
            Some(p) => self.nodes[p as usize].follow,
            None => self.nodes[parent.id as usize].first,
        };
        let id = if guess != NO_GUESS && self.is(guess, parent.id, local) {
            guess
        } else {
            let Some(id) = self.find_or_add(parent.id, local) else {
                return Node::NONE;
            };
            match previous {
                Some(p) => self.nodes[p as usize].follow = id,
                None => self.nodes[parent.id as usize].first = id,
            }
            id
        };
        Node {
            generation: self.generation,
            id,
        }
    }

    fn find_or_add(&mut self, parent: u32, local: &str) -> Option<u32> {
        let key = foldhash::fast::FixedState::default().hash_one((parent, local));
        if let Some(&id) = self.index.get(&key) {
            return self.is(id, parent, local).then_some(id);
        }
        if self.nodes.len() >= MAX_NODES || self.names.len() + local.len() > u32::MAX as usize {
            return None;
        }
        let id = self.nodes.len() as u32;
        let a = self.names.len() as u32;
        self.names.push_str(local);
        self.nodes.push(NodeRec {
            parent,
            name: (a, self.names.len() as u32),
            first: NO_GUESS,
            follow: NO_GUESS,
        });
        self.index.insert(key, id);
        Some(id)
    }
}

/// What a path means to one checker, computed once per path (see the
/// module doc), cleared when the thread's tree is replaced.
#[derive(Debug)]
pub struct PathMemo<T> {
    generation: u32,
    slots: Vec<Option<T>>,
    /// The value of the last path without an id.
    scratch: Option<T>,
}

impl<T> Default for PathMemo<T> {
    fn default() -> Self {
        PathMemo::new()
    }
}

impl<T> PathMemo<T> {
    pub const fn new() -> Self {
        PathMemo {
            generation: 0,
            slots: Vec::new(),
            scratch: None,
        }
    }

    /// The value for `node`, computed by `compute` the first time.
    #[inline]
    pub fn get(&mut self, node: Node, compute: impl FnOnce() -> T) -> &mut T {
        if node.is_none() {
            return self.scratch.insert(compute());
        }
        if node.generation != self.generation {
            self.slots.clear();
            self.generation = node.generation;
        }
        let i = node.id as usize;
        if i >= self.slots.len() {
            self.slots.resize_with(i + 1, || None);
        }
        self.slots[i].get_or_insert_with(compute)
    }
}

/// A [`PathMemo`] taken from its thread-local home for one document and
/// given back when dropped, so the next document of the thread keeps it.
pub struct ThreadMemo<T: 'static> {
    memo: PathMemo<T>,
    home: &'static std::thread::LocalKey<Cell<PathMemo<T>>>,
}

impl<T: 'static> ThreadMemo<T> {
    pub fn take(home: &'static std::thread::LocalKey<Cell<PathMemo<T>>>) -> Self {
        ThreadMemo {
            memo: home.with(|m| m.take()),
            home,
        }
    }

    #[inline]
    pub fn get(&mut self, node: Node, compute: impl FnOnce() -> T) -> &mut T {
        self.memo.get(node, compute)
    }
}

impl<T: 'static> Drop for ThreadMemo<T> {
    fn drop(&mut self) {
        let memo = std::mem::take(&mut self.memo);
        // At thread exit the home may be gone: then the memo just drops.
        let _ = self.home.try_with(|m| m.set(memo));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_keeps_its_node_and_a_memo_its_value() {
        let mut t = Tree::new();
        let root = t.root();
        let n = Node::NONE;
        let a = t.child(root, n, "A");
        let b = t.child(a, n, "B");
        assert_eq!(t.child(root, n, "A"), a);
        assert_eq!(t.child(a, n, "B"), b);
        let c = t.child(a, b, "C");
        // The guesses (C after B) and the index agree.
        assert_eq!(t.child(a, b, "C"), c);
        assert_eq!(t.child(a, n, "C"), c);
        assert_eq!(t.child(a, c, "B"), b);
        assert_eq!(t.child(a, b, "B"), b);
        assert_ne!(t.child(root, n, "B"), b);
        assert_ne!(t.child(root, a, "C"), c);
        assert_eq!(t.child(Node::NONE, n, "B"), Node::NONE);
        let mut m = PathMemo::new();
        let mut calls = 0;
        for _ in 0..3 {
            assert_eq!(
                *m.get(b, || {
                    calls += 1;
                    7
                }),
                7
            );
        }
        assert_eq!(calls, 1);
        // Another tree: the memo starts again.
        let mut t2 = Tree::new();
        let a2 = t2.child(t2.root(), Node::NONE, "A");
        assert_eq!(*m.get(a2, || 9), 9);
        assert_eq!(*m.get(Node::NONE, || 5), 5);
    }

    #[test]
    fn a_full_tree_gives_no_more_ids() {
        let mut t = Tree::new();
        let root = t.root();
        for i in 0..MAX_NODES {
            t.child(root, Node::NONE, &format!("e{i}"));
        }
        assert_eq!(t.child(root, Node::NONE, "another"), Node::NONE);
        // Paths already known keep their ids.
        assert_ne!(t.child(root, Node::NONE, "e1"), Node::NONE);
    }
}
