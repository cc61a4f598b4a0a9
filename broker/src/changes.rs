//! What applying an assignment update changed on a broker.

/// What applying an assignment update (or retrying failed replicas)
/// changed on this broker, by partition.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Opened (recovered) and now served.
    pub opened: Vec<(String, u32)>,
    /// Served before and after, with a new state or settings.
    pub updated: Vec<(String, u32)>,
    /// Not served, data kept (the kept-data alarm says why).
    pub kept: Vec<(String, u32)>,
    /// Not served, no data left (deleted on evidence, or none was there).
    pub removed: Vec<(String, u32)>,
    /// Could not be opened: now failed replicas.
    pub failed: Vec<(String, u32)>,
}

impl Changes {
    /// Adds what `other` changed.
    pub(crate) fn merge(&mut self, other: Changes) {
        self.opened.extend(other.opened);
        self.updated.extend(other.updated);
        self.kept.extend(other.kept);
        self.removed.extend(other.removed);
        self.failed.extend(other.failed);
    }

    /// Nothing changed.
    pub fn is_empty(&self) -> bool {
        self.opened.is_empty()
            && self.updated.is_empty()
            && self.kept.is_empty()
            && self.removed.is_empty()
            && self.failed.is_empty()
    }
}
