//! Interned ACL lists: each distinct list is stored once and nodes hold a 4-byte id, as Apache's
//! `ReferenceCountedACLCache`. Invariant: an entry's reference count equals the number of
//! nodes holding its id; an entry at zero is freed and its slot reused. Lists are shared
//! (`Arc`), so a change record can keep the ACL a node had when it changed at the cost of a
//! reference count.

use std::collections::HashMap;
use std::sync::Arc;

use crate::proto::Acl;

/// Index of an interned ACL list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AclId(pub u32);

#[derive(Debug, Default)]
pub struct AclCache {
    lists: Vec<(Arc<[Acl]>, u64)>,
    by_list: HashMap<Arc<[Acl]>, AclId>,
    free: Vec<AclId>,
}

impl AclCache {
    /// Takes a reference to `acl`, interning it if new.
    pub fn intern(&mut self, acl: &[Acl]) -> AclId {
        if let Some(&id) = self.by_list.get(acl) {
            self.lists[id.0 as usize].1 += 1;
            return id;
        }
        let list: Arc<[Acl]> = Arc::from(acl);
        let id = match self.free.pop() {
            Some(id) => {
                self.lists[id.0 as usize] = (Arc::clone(&list), 1);
                id
            }
            None => {
                self.lists.push((Arc::clone(&list), 1));
                AclId(self.lists.len() as u32 - 1)
            }
        };
        self.by_list.insert(list, id);
        id
    }

    /// Drops one reference.
    pub fn release(&mut self, id: AclId) {
        let entry = &mut self.lists[id.0 as usize];
        entry.1 -= 1;
        if entry.1 == 0 {
            let list = std::mem::replace(&mut entry.0, Arc::from([]));
            self.by_list.remove(&list);
            self.free.push(id);
        }
    }

    pub fn get(&self, id: AclId) -> &[Acl] {
        &self.lists[id.0 as usize].0
    }

    /// The list of `id`, shared (a reference count, no copy).
    pub fn shared(&self, id: AclId) -> Arc<[Acl]> {
        Arc::clone(&self.lists[id.0 as usize].0)
    }

    /// Number of distinct lists in use.
    pub fn len(&self) -> usize {
        self.by_list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_list.is_empty()
    }
}
