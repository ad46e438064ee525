//! A small ordered map: a vector of pairs sorted by key, searched by bisection.
//!
//! The chat model keeps a few maps of tens of entries (rooms, room names, people, requests in
//! flight). Each `BTreeMap<K, V>` type compiles its own node-balancing code into the bundle;
//! this map compiles to a bisection and a vector insert or removal per type, and iterates in
//! key order just the same. A room's messages are kept here too: they grow mostly at the end
//! (live messages), and a page of history inserted at the front moves at most a few thousand
//! entries per message, which costs less than the tree's code in the bundle.

/// Pairs sorted by key, each key once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Map<K, V> {
    items: Vec<(K, V)>,
}

impl<K, V> Default for Map<K, V> {
    fn default() -> Self {
        Map { items: Vec::new() }
    }
}

impl<K: Ord, V> Map<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Where `k` is (`Ok`) or would go (`Err`).
    fn find(&self, k: &K) -> Result<usize, usize> {
        self.items.binary_search_by(|(x, _)| x.cmp(k))
    }

    /// The value of `k`.
    pub fn get(&self, k: &K) -> Option<&V> {
        self.find(k).ok().map(|i| &self.items[i].1)
    }

    /// The value of `k`, to change.
    pub fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        self.find(k).ok().map(|i| &mut self.items[i].1)
    }

    /// Whether `k` has a value.
    pub fn contains_key(&self, k: &K) -> bool {
        self.find(k).is_ok()
    }

    /// Sets the value of `k`; returns the one it replaces.
    pub fn insert(&mut self, k: K, v: V) -> Option<V> {
        match self.find(&k) {
            Ok(i) => Some(std::mem::replace(&mut self.items[i].1, v)),
            Err(i) => {
                self.items.insert(i, (k, v));
                None
            }
        }
    }

    /// Removes `k`; returns its value.
    pub fn remove(&mut self, k: &K) -> Option<V> {
        self.find(k).ok().map(|i| self.items.remove(i).1)
    }

    /// The value of `k`, made with `f` first if there is none.
    pub fn get_or_insert_with(&mut self, k: K, f: impl FnOnce() -> V) -> &mut V {
        let i = match self.find(&k) {
            Ok(i) => i,
            Err(i) => {
                self.items.insert(i, (k, f()));
                i
            }
        };
        &mut self.items[i].1
    }

    /// The value of `k`, the default one first if there is none.
    pub fn get_or_default(&mut self, k: K) -> &mut V
    where
        V: Default,
    {
        self.get_or_insert_with(k, V::default)
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &K> {
        self.items.iter().map(|(k, _)| k)
    }

    /// The values, in the order of their keys.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> {
        self.items.iter().map(|(_, v)| v)
    }

    /// The values, in the order of their keys, to change.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.items.iter_mut().map(|(_, v)| v)
    }

    /// The pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.items.iter().map(|(k, v)| (k, v))
    }

    /// The pairs, in order, with the values to change.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> {
        self.items.iter_mut().map(|(k, v)| (&*k, v))
    }

    /// How many keys have a value.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether no key has a value.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Removes everything.
    pub fn clear(&mut self) {
        self.items.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stay_in_order_and_once_like_a_btree_map() {
        let mut m = Map::new();
        assert_eq!(m.insert(5, "e"), None);
        assert_eq!(m.insert(1, "a"), None);
        assert_eq!(m.insert(3, "c"), None);
        assert_eq!(m.insert(3, "C"), Some("c"));
        assert_eq!(m.keys().copied().collect::<Vec<_>>(), vec![1, 3, 5]);
        assert_eq!(m.get(&3), Some(&"C"));
        assert!(m.contains_key(&5) && !m.contains_key(&4));
        *m.get_or_insert_with(4, || "d") = "D";
        assert_eq!(*m.get_or_default(0), "");
        assert_eq!(
            m.values().copied().collect::<Vec<_>>(),
            vec!["", "a", "C", "D", "e"]
        );
        assert_eq!(m.remove(&1), Some("a"));
        assert_eq!(m.remove(&1), None);
        if let Some(v) = m.get_mut(&5) {
            *v = "E";
        }
        for (k, v) in m.iter_mut().filter(|(k, _)| **k > 3) {
            assert!(*k > 3);
            *v = "big";
        }
        assert_eq!(
            m.values().copied().collect::<Vec<_>>(),
            vec!["", "C", "big", "big"]
        );
        assert_eq!(
            m.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            vec![0, 3, 4, 5]
        );
        assert_eq!(m.len(), 4);
        m.clear();
        assert!(m.is_empty());
    }
}
