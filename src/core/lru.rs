//! A small least-recently-used map from byte keys to values: the per-call-site cache of
//! models, which must stay cheap when every row names another model.

use rustc_hash::FxHashMap;

pub struct Lru<V> {
    capacity: usize,
    entries: Vec<Entry<V>>,
    index: FxHashMap<Box<[u8]>, usize>,
    tick: u64,
    /// The entry found last: rows often repeat the previous key.
    last: usize,
    loads: u64,
}

struct Entry<V> {
    key: Box<[u8]>,
    value: V,
    used: u64,
}

impl<V> Lru<V> {
    pub fn new(capacity: usize) -> Lru<V> {
        Lru { capacity: capacity.max(1), entries: Vec::new(), index: FxHashMap::default(), tick: 0, last: 0, loads: 0 }
    }

    /// The value for `key`, loaded with `load` when it is not cached; the least recently
    /// used entry makes room when the cache is full. A load that does not return (an
    /// ERROR unwinds through it) caches nothing.
    pub fn get_or_insert_with(&mut self, key: &[u8], load: impl FnOnce() -> V) -> &mut V {
        self.tick += 1;
        let hit = match self.entries.get(self.last) {
            Some(e) if *e.key == *key => Some(self.last),
            _ => self.index.get(key).copied(),
        };
        let slot = match hit {
            Some(i) => i,
            None => {
                let value = load();
                self.loads += 1;
                let entry = Entry { key: key.into(), value, used: self.tick };
                let slot = if self.entries.len() < self.capacity {
                    self.entries.push(entry);
                    self.entries.len() - 1
                } else {
                    let oldest = self.entries.iter().enumerate().min_by_key(|(_, e)| e.used).map_or(0, |(i, _)| i);
                    self.index.remove(&self.entries[oldest].key);
                    self.entries[oldest] = entry;
                    oldest
                };
                self.index.insert(key.into(), slot);
                slot
            }
        };
        self.last = slot;
        let e = &mut self.entries[slot];
        e.used = self.tick;
        &mut e.value
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many times a value was loaded (misses that succeeded).
    pub fn loads(&self) -> u64 {
        self.loads
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.index.clear();
        self.last = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(lru: &mut Lru<String>, key: &str, loaded: &mut Vec<String>) -> String {
        lru.get_or_insert_with(key.as_bytes(), || {
            loaded.push(key.to_string());
            key.to_uppercase()
        })
        .clone()
    }

    #[test]
    fn loads_each_key_once_while_it_fits() {
        let mut lru = Lru::new(3);
        let mut loaded = Vec::new();
        for _ in 0..10 {
            for k in ["a", "b", "c"] {
                assert_eq!(get(&mut lru, k, &mut loaded), k.to_uppercase());
            }
        }
        assert_eq!(loaded, ["a", "b", "c"]);
        assert_eq!(lru.loads(), 3);
    }

    #[test]
    fn evicts_the_least_recently_used() {
        let mut lru = Lru::new(2);
        let mut loaded = Vec::new();
        for k in ["a", "b", "a", "c", "a", "b"] {
            get(&mut lru, k, &mut loaded);
        }
        // "c" evicts "b" (a was used after b); then "b" evicts "c".
        assert_eq!(loaded, ["a", "b", "c", "b"]);
        assert_eq!(lru.len(), 2);
    }

    #[test]
    fn failed_loads_cache_nothing() {
        let mut lru: Lru<i32> = Lru::new(2);
        // A load that raises (in PostgreSQL an ERROR unwinds as a panic) leaves no entry.
        let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            lru.get_or_insert_with(b"x", || panic!("no"));
        }));
        assert!(failed.is_err());
        assert!(lru.is_empty());
        assert_eq!(lru.loads(), 0);
        assert_eq!(*lru.get_or_insert_with(b"x", || 7), 7);
        lru.clear();
        assert!(lru.is_empty());
    }
}
