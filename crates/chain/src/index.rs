//! The in-memory block index: every known header, its place in the tree, and which chain is
//! the best candidate. Rebuilt from the store at start.

use std::collections::{BTreeSet, HashMap};

use peerchain_consensus::{HeaderContext, MEDIAN_TIME_SPAN, Params, RetargetInput, median_time, next_target};
use peerchain_primitives::{BlockHash, BlockHeader, Work};
use peerchain_store::IndexEntry;

/// One known header.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) entry: IndexEntry,
    /// The time of this branch's block at height 1, the difficulty anchor.
    pub(crate) anchor_time: Option<u64>,
    /// Whether this block and all its ancestors have their data, so it could be connected.
    pub(crate) data_complete: bool,
    pub(crate) children: Vec<BlockHash>,
    /// Whether the entry is in the store. Headers of a branch with less work than the tip
    /// live in memory only until their branch catches up (see
    /// [`crate::Config::max_low_work_headers`]).
    pub(crate) saved: bool,
}

/// Every known header, the main chain, and the candidates for a better tip.
#[derive(Debug)]
pub(crate) struct BlockIndex {
    nodes: HashMap<BlockHash, Node>,
    /// The main chain by height.
    pub(crate) main: Vec<BlockHash>,
    /// Blocks whose data is complete and whose work exceeded the tip's when they were added,
    /// ordered by work (then arrival, earlier first).
    candidates: BTreeSet<(Work, std::cmp::Reverse<u64>, BlockHash)>,
    arrivals: u64,
    /// The valid header with the most work (see [`BlockIndex::best_header`]).
    best_header: BlockHash,
    /// Headers not in the store, oldest first (some may have been saved or forgotten since).
    unsaved: std::collections::VecDeque<BlockHash>,
    /// How many nodes are not saved.
    unsaved_count: usize,
    /// The best header's branch above the main chain, lowest first, as last walked: sync
    /// asks for the blocks missing along it after every batch, and walking back thousands of
    /// headers each time took a tenth of a syncing node's chain thread.
    best_branch: Vec<BlockHash>,
}

impl BlockIndex {
    /// Rebuilds the index from stored entries and the stored main chain.
    pub(crate) fn load(entries: Vec<(BlockHash, IndexEntry)>, main: Vec<BlockHash>) -> Self {
        let mut nodes: HashMap<BlockHash, Node> = entries
            .into_iter()
            .map(|(hash, entry)| {
                (hash, Node { entry, anchor_time: None, data_complete: false, children: Vec::new(), saved: true })
            })
            .collect();
        let mut by_height: Vec<(u32, BlockHash)> = nodes.iter().map(|(h, n)| (n.entry.height, *h)).collect();
        by_height.sort_unstable();
        // Parents come before children in height order, so one pass fills the derived fields.
        for (height, hash) in by_height {
            let (entry, parent_hash) = {
                let node = &nodes[&hash];
                (node.entry, node.entry.header.prev_hash)
            };
            let (anchor_time, data_complete) = match nodes.get_mut(&parent_hash) {
                Some(parent) if height > 0 => {
                    parent.children.push(hash);
                    let anchor = if height == 1 { Some(entry.header.time) } else { parent.anchor_time };
                    (anchor, parent.data_complete && entry.has_data)
                }
                _ => (None, height == 0),
            };
            let node = nodes.get_mut(&hash).expect("iterating known hashes");
            node.anchor_time = anchor_time;
            node.data_complete = data_complete;
        }
        let tip = *main.last().expect("the main chain always holds genesis");
        let mut index = BlockIndex {
            nodes,
            main,
            candidates: BTreeSet::new(),
            arrivals: 0,
            best_header: tip,
            unsaved: std::collections::VecDeque::new(),
            unsaved_count: 0,
            best_branch: Vec::new(),
        };
        index.recompute_best_header();
        let tip_work = index.tip_entry().total_work;
        let complete: Vec<BlockHash> = index
            .nodes
            .iter()
            .filter(|(_, n)| n.data_complete && !n.entry.invalid && n.entry.total_work > tip_work)
            .map(|(h, _)| *h)
            .collect();
        for hash in complete {
            index.add_candidate(hash);
        }
        index
    }

    pub(crate) fn get(&self, hash: &BlockHash) -> Option<&Node> {
        self.nodes.get(hash)
    }

    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    pub(crate) fn tip(&self) -> BlockHash {
        *self.main.last().expect("the main chain always holds genesis")
    }

    pub(crate) fn tip_entry(&self) -> &IndexEntry {
        &self.nodes[&self.tip()].entry
    }

    pub(crate) fn height(&self) -> u32 {
        (self.main.len() - 1) as u32
    }

    pub(crate) fn is_on_main_chain(&self, hash: &BlockHash) -> bool {
        self.nodes.get(hash).is_some_and(|n| self.main.get(n.entry.height as usize) == Some(hash))
    }

    /// What the header of a child of `parent` must satisfy.
    pub(crate) fn child_context(&self, parent: &BlockHash, params: &Params, now: u64) -> HeaderContext {
        let node = &self.nodes[parent];
        let mut times = Vec::with_capacity(MEDIAN_TIME_SPAN);
        let mut cursor = Some(*parent);
        while let Some(hash) = cursor {
            if times.len() == MEDIAN_TIME_SPAN {
                break;
            }
            let n = &self.nodes[&hash];
            times.push(n.entry.header.time);
            cursor = (n.entry.height > 0).then_some(n.entry.header.prev_hash);
        }
        let expected_bits = next_target(
            params,
            RetargetInput {
                parent_height: node.entry.height,
                parent_time: node.entry.header.time,
                anchor_time: node.anchor_time,
            },
        );
        HeaderContext { expected_bits, median_time_past: median_time(&times), now }
    }

    /// Adds a header whose parent is known and which passed its checks, not saved yet (see
    /// [`BlockIndex::mark_saved`]).
    pub(crate) fn insert_header(&mut self, hash: BlockHash, header: BlockHeader) -> IndexEntry {
        let parent = self.nodes.get_mut(&header.prev_hash).expect("callers check the parent is known");
        parent.children.push(hash);
        let work = header.bits.expand().map(|t| t.work()).unwrap_or_default();
        let entry = IndexEntry {
            header,
            height: parent.entry.height + 1,
            total_work: parent.entry.total_work.saturating_add(work),
            has_data: false,
            invalid: false,
        };
        let anchor_time = if entry.height == 1 { Some(header.time) } else { parent.anchor_time };
        self.nodes.insert(hash, Node { entry, anchor_time, data_complete: false, children: Vec::new(), saved: false });
        self.unsaved.push_back(hash);
        self.unsaved_count += 1;
        if entry.total_work > self.nodes[&self.best_header].entry.total_work {
            self.best_header = hash;
        }
        entry
    }

    /// The entries to write for `hash` to be in the store: its own and those of its ancestors
    /// not saved yet, ancestors first (a stored entry's parent is always stored). They count
    /// as saved from now on: the caller writes them.
    pub(crate) fn mark_saved(&mut self, hash: BlockHash) -> Vec<(BlockHash, IndexEntry)> {
        let mut path = Vec::new();
        let mut cursor = hash;
        while let Some(node) = self.nodes.get_mut(&cursor) {
            if node.saved {
                break;
            }
            node.saved = true;
            self.unsaved_count -= 1;
            path.push((cursor, node.entry));
            cursor = node.entry.header.prev_hash;
        }
        path.reverse();
        path
    }

    /// Whether a header is held in memory only.
    pub(crate) fn is_unsaved(&self, hash: &BlockHash) -> bool {
        self.nodes.get(hash).is_some_and(|n| !n.saved)
    }

    /// Forgets the oldest unsaved headers, each with its descendants (which are unsaved too),
    /// until at most `max` remain; returns how many were forgotten.
    pub(crate) fn forget_unsaved_beyond(&mut self, max: usize) -> usize {
        let mut forgotten = 0;
        while self.unsaved_count > max {
            let Some(oldest) = self.unsaved.pop_front() else { break };
            if !self.is_unsaved(&oldest) {
                continue;
            }
            let parent = self.nodes[&oldest].entry.header.prev_hash;
            if let Some(parent) = self.nodes.get_mut(&parent) {
                parent.children.retain(|child| *child != oldest);
            }
            let mut stack = vec![oldest];
            while let Some(current) = stack.pop() {
                let Some(node) = self.nodes.remove(&current) else { continue };
                debug_assert!(!node.saved, "a saved node's ancestors are saved");
                self.unsaved_count -= 1;
                forgotten += 1;
                stack.extend(node.children);
            }
        }
        // The queue also holds hashes saved or forgotten since; drop them once it is long.
        if self.unsaved.len() > 2 * max.max(1) {
            let nodes = &self.nodes;
            self.unsaved.retain(|hash| nodes.get(hash).is_some_and(|n| !n.saved));
        }
        forgotten
    }

    /// How many headers are held in memory only.
    pub(crate) fn unsaved_len(&self) -> usize {
        self.unsaved_count
    }

    /// Records that a block's data is stored; returns the blocks that became connectable.
    pub(crate) fn mark_has_data(&mut self, hash: BlockHash) -> Vec<BlockHash> {
        let Some(node) = self.nodes.get_mut(&hash) else { return Vec::new() };
        node.entry.has_data = true;
        let parent_hash = node.entry.header.prev_hash;
        let parent_complete = self.nodes.get(&parent_hash).is_some_and(|p| p.data_complete);
        if !parent_complete {
            return Vec::new();
        }
        // Correctness: the block completes its own chain and perhaps descendants that arrived
        // before it; walk them all so that none is missed as a candidate.
        let mut completed = Vec::new();
        let mut stack = vec![hash];
        while let Some(current) = stack.pop() {
            let node = self.nodes.get_mut(&current).expect("children are known");
            if !node.entry.has_data || node.data_complete {
                continue;
            }
            node.data_complete = true;
            stack.extend(node.children.iter().copied());
            completed.push(current);
        }
        let tip_work = self.tip_entry().total_work;
        for hash in &completed {
            let node = &self.nodes[hash];
            if !node.entry.invalid && node.entry.total_work > tip_work {
                self.add_candidate(*hash);
            }
        }
        completed
    }

    fn add_candidate(&mut self, hash: BlockHash) {
        self.arrivals += 1;
        let work = self.nodes[&hash].entry.total_work;
        self.candidates.insert((work, std::cmp::Reverse(self.arrivals), hash));
    }

    /// The candidate with the most work, if it beats the tip. Stale candidates are dropped.
    pub(crate) fn best_candidate(&mut self) -> Option<BlockHash> {
        let tip_work = self.tip_entry().total_work;
        while let Some(&(work, arrival, hash)) = self.candidates.last() {
            let usable = self.nodes.get(&hash).is_some_and(|n| !n.entry.invalid);
            if work <= tip_work || !usable {
                self.candidates.remove(&(work, arrival, hash));
                continue;
            }
            return Some(hash);
        }
        None
    }

    /// Marks a block and all its descendants invalid; returns them all.
    pub(crate) fn mark_invalid(&mut self, hash: BlockHash) -> Vec<BlockHash> {
        let mut marked = Vec::new();
        let mut stack = vec![hash];
        while let Some(current) = stack.pop() {
            let Some(node) = self.nodes.get_mut(&current) else { continue };
            if !node.entry.invalid {
                node.entry.invalid = true;
                marked.push(current);
            }
            stack.extend(node.children.iter().copied());
        }
        if marked.contains(&self.best_header) {
            self.recompute_best_header();
        }
        marked
    }

    /// Clears the invalid mark of a block, its descendants and its ancestors (Bitcoin Core's
    /// `reconsiderblock`), making complete branches candidates again; returns the cleared.
    pub(crate) fn clear_invalid(&mut self, hash: BlockHash) -> Vec<BlockHash> {
        let mut cleared = Vec::new();
        let mut stack = vec![hash];
        while let Some(current) = stack.pop() {
            let Some(node) = self.nodes.get_mut(&current) else { continue };
            if node.entry.invalid {
                node.entry.invalid = false;
                cleared.push(current);
            }
            stack.extend(node.children.iter().copied());
        }
        let mut cursor = self.nodes.get(&hash).map(|n| n.entry.header.prev_hash);
        while let Some(ancestor) = cursor {
            let Some(node) = self.nodes.get_mut(&ancestor) else { break };
            if node.entry.invalid {
                node.entry.invalid = false;
                cleared.push(ancestor);
            }
            cursor = (node.entry.height > 0).then_some(node.entry.header.prev_hash);
        }
        let tip_work = self.tip_entry().total_work;
        for hash in &cleared {
            let node = &self.nodes[hash];
            if node.data_complete && node.entry.total_work > tip_work {
                self.add_candidate(*hash);
            }
        }
        self.recompute_best_header();
        cleared
    }

    fn recompute_best_header(&mut self) {
        let tip = self.tip();
        let mut best = (self.nodes[&tip].entry.total_work, tip);
        for (hash, node) in &self.nodes {
            if !node.entry.invalid && node.entry.total_work > best.0 {
                best = (node.entry.total_work, *hash);
            }
        }
        self.best_header = best.1;
    }

    /// The path from the fork point with the main chain to `target`: blocks to disconnect
    /// (tip first) and blocks to connect (in order).
    pub(crate) fn path_to(&self, target: BlockHash) -> (Vec<BlockHash>, Vec<BlockHash>) {
        let mut connect = Vec::new();
        let mut cursor = target;
        while !self.is_on_main_chain(&cursor) {
            connect.push(cursor);
            cursor = self.nodes[&cursor].entry.header.prev_hash;
        }
        connect.reverse();
        let fork_height = self.nodes[&cursor].entry.height as usize;
        let disconnect = self.main[fork_height + 1..].iter().rev().copied().collect();
        (disconnect, connect)
    }

    /// Updates an entry's flags after they were stored.
    pub(crate) fn set_entry(&mut self, hash: &BlockHash, entry: IndexEntry) {
        if let Some(node) = self.nodes.get_mut(hash) {
            node.entry = entry;
        }
    }

    /// The known header with the most work that is not invalid: where headers-first sync
    /// is heading. Ties go to the main chain's tip.
    pub(crate) fn best_header(&self) -> BlockHash {
        // The tip can overtake a header of equal work only by arriving first; prefer it then.
        let tip = self.tip();
        if self.nodes[&tip].entry.total_work >= self.nodes[&self.best_header].entry.total_work {
            tip
        } else {
            self.best_header
        }
    }

    /// A block locator for the chain ending at `from`: the last ten blocks one by one, then
    /// exponentially sparser, ending at genesis, as Bitcoin's getheaders uses.
    pub(crate) fn locator(&self, from: BlockHash) -> Vec<BlockHash> {
        let mut hashes = Vec::with_capacity(32);
        let mut cursor = from;
        let mut step = 1u32;
        loop {
            let node = &self.nodes[&cursor];
            hashes.push(cursor);
            let height = node.entry.height;
            if height == 0 {
                return hashes;
            }
            if hashes.len() >= 10 {
                step = step.saturating_mul(2);
            }
            let target = height.saturating_sub(step);
            // Walk back along this branch until it meets the main chain, then jump.
            while self.nodes[&cursor].entry.height > target {
                if self.is_on_main_chain(&cursor) {
                    cursor = self.main[target as usize];
                    break;
                }
                cursor = self.nodes[&cursor].entry.header.prev_hash;
            }
        }
    }

    /// Up to `max` main-chain headers after the first locator hash found on the main chain.
    pub(crate) fn headers_after(&self, locator: &[BlockHash], max: usize) -> Vec<BlockHeader> {
        let start = locator.iter().find(|h| self.is_on_main_chain(h)).map_or(0, |h| self.nodes[h].entry.height + 1);
        self.main.iter().skip(start as usize).take(max).map(|h| self.nodes[h].entry.header).collect()
    }

    /// Blocks on the way to the best header whose data is missing, lowest first, at most `max`.
    pub(crate) fn missing_blocks(&mut self, max: usize) -> Vec<BlockHash> {
        // The branch walked last still leads from the main chain to the best header if it
        // ends there and starts on top of a main-chain block (the main chain may have grown
        // along it since: that part is skipped).
        let best = self.best_header();
        let still_valid = self.best_branch.last() == Some(&best)
            && self.nodes.get(&self.best_branch[0]).is_some_and(|n| self.is_on_main_chain(&n.entry.header.prev_hash));
        if !still_valid {
            self.best_branch = self.path_to(best).1;
        }
        let above_main = self.best_branch.partition_point(|hash| self.is_on_main_chain(hash));
        self.best_branch[above_main..]
            .iter()
            .filter(|hash| self.nodes.get(*hash).is_some_and(|n| !n.entry.has_data))
            .take(max)
            .copied()
            .collect()
    }
}
