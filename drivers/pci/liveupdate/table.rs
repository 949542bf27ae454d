// SPDX-License-Identifier: GPL-2.0

//! The table of preserved PCI devices, and the validation of the one handed over.
//!
//! Preserving an endpoint also preserves every bridge on its path to the root: each entry's
//! refcount is the number of preserved endpoints at or below it. Entries are kept sorted by
//! device, so lookups are binary searches. Every operation checks first and changes nothing
//! until it cannot fail any more: the only fallible step, making room, comes before any
//! change, so a failed call leaves the table as it was.
//!
//! Only `core` is used; the storage comes from the caller ([`Storage`]), so the kernel and the
//! host test crate compile this same file.

use super::abi::{DevId, Entry, Header, ENTRY_SIZE, MAX_DOMAIN, VERSION};

/// Growable storage: `KVec` in the kernel, `Vec` on the host.
pub trait Storage<T> {
    /// The items.
    fn items(&self) -> &[T];
    /// The items, mutably.
    fn items_mut(&mut self) -> &mut [T];
    /// Makes room for `additional` more items; the only step that may fail.
    fn reserve(&mut self, additional: usize) -> Result<(), OutOfMemory>;
    /// Appends `item` within the room made by [`Storage::reserve`].
    fn push_reserved(&mut self, item: T);
    /// Removes the last item.
    fn pop(&mut self) -> Option<T>;
}

/// Allocation failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfMemory;

/// One table entry: the ABI entry, and whether the device is itself preserved (rather than
/// only counted as a bridge above preserved devices). The flag is known in the outgoing
/// kernel only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// The device and its refcount (never 0 in a table).
    pub entry: Entry,
    /// The device itself was preserved by a driver.
    pub endpoint: bool,
}

/// Why a preserve or unpreserve was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableError {
    /// The device is already preserved.
    Busy,
    /// The device is not preserved (or not incoming).
    NotPreserved,
    /// A bridge would count more than `u16::MAX` devices, or the table would outgrow the
    /// header's 32-bit count.
    Overflow,
    /// The path is empty or names a device twice.
    BadPath,
    /// Out of memory.
    NoMemory,
}

/// Why the state handed over by the previous kernel was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// Written by a kernel with another ABI version.
    Version(u32),
    /// The header's device count disagrees with the entries in use.
    Count {
        /// What the header says.
        header: u32,
        /// What the entries say.
        entries: usize,
    },
    /// A device appears twice.
    Duplicate(DevId),
    /// A domain number Linux cannot have.
    Domain(DevId),
}

impl core::fmt::Display for Invalid {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Invalid::Version(v) => write!(f, "ABI version {v}, this kernel reads {VERSION}"),
            Invalid::Count { header, entries } => write!(
                f,
                "header counts {header} devices, the entries hold {entries}"
            ),
            Invalid::Duplicate(id) => write!(f, "device {id} appears twice"),
            Invalid::Domain(id) => write!(f, "device {id}: domain above {MAX_DOMAIN:#x}"),
        }
    }
}

/// Why loading the handed-over state failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// The state is invalid; nothing of it may be used.
    Invalid(Invalid),
    /// Out of memory.
    NoMemory,
}

/// The preserved devices, sorted by [`DevId`], refcounts never 0.
pub struct Table<S: Storage<Slot>> {
    slots: S,
}

impl<S: Storage<Slot>> Table<S> {
    /// An empty table on `storage` (which must be empty).
    pub fn new(storage: S) -> Self {
        debug_assert!(storage.items().is_empty());
        Self { slots: storage }
    }

    /// Loads the state a previous kernel handed over: `header` and the raw entries read from
    /// its block set. Free slots (refcount 0) are skipped; everything else is validated.
    pub fn load(header: &Header, raw: &[[u8; ENTRY_SIZE]], storage: S) -> Result<Self, LoadError> {
        if header.version != VERSION {
            return Err(LoadError::Invalid(Invalid::Version(header.version)));
        }
        let in_use = raw
            .iter()
            .filter(|r| Entry::decode(r).refcount != 0)
            .count();
        if in_use != header.nr_devices as usize {
            return Err(LoadError::Invalid(Invalid::Count {
                header: header.nr_devices,
                entries: in_use,
            }));
        }
        let mut table = Self::new(storage);
        table
            .slots
            .reserve(in_use)
            .map_err(|OutOfMemory| LoadError::NoMemory)?;
        for entry in raw.iter().map(Entry::decode).filter(|e| e.refcount != 0) {
            if entry.id.domain > MAX_DOMAIN {
                return Err(LoadError::Invalid(Invalid::Domain(entry.id)));
            }
            table.slots.push_reserved(Slot {
                entry,
                endpoint: false,
            });
        }
        let items = table.slots.items_mut();
        items.sort_unstable_by_key(|s| s.entry.id);
        if let Some(pair) = items.windows(2).find(|w| w[0].entry.id == w[1].entry.id) {
            return Err(LoadError::Invalid(Invalid::Duplicate(pair[0].entry.id)));
        }
        debug_assert!(table.is_consistent());
        Ok(table)
    }

    /// Number of devices in the table.
    pub fn len(&self) -> usize {
        self.slots.items().len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.slots.items().is_empty()
    }

    /// The refcount of `id`, `None` when it is not in the table.
    pub fn refcount(&self, id: DevId) -> Option<u16> {
        self.find(id)
            .ok()
            .map(|i| self.slots.items()[i].entry.refcount)
    }

    /// The entries, sorted, as they are handed over.
    pub fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        self.slots.items().iter().map(|s| s.entry)
    }

    /// The header for entries stored at physical address `devices`.
    pub fn header(&self, devices: u64) -> Header {
        Header {
            version: VERSION,
            // `preserve` keeps the table within u32::MAX entries.
            nr_devices: self.len() as u32,
            devices,
        }
    }

    /// Preserves the endpoint at the end of `path` and counts it on every bridge before it.
    ///
    /// `path` runs from the bridge nearest the root down to the endpoint.
    pub fn preserve(&mut self, path: &[DevId]) -> Result<(), TableError> {
        let endpoint = check_path(path)?;
        if let Ok(i) = self.find(endpoint) {
            if self.slots.items()[i].endpoint {
                return Err(TableError::Busy);
            }
        }
        let mut missing = 0;
        for &id in path {
            match self.find(id) {
                Ok(i) if self.slots.items()[i].entry.refcount == u16::MAX => {
                    return Err(TableError::Overflow)
                }
                Ok(_) => {}
                Err(_) => missing += 1,
            }
        }
        if self.len() + missing > u32::MAX as usize {
            return Err(TableError::Overflow);
        }
        self.slots
            .reserve(missing)
            .map_err(|OutOfMemory| TableError::NoMemory)?;
        // Nothing below can fail.
        for &id in path {
            let i = match self.find(id) {
                Ok(i) => {
                    self.slots.items_mut()[i].entry.refcount += 1;
                    i
                }
                Err(at) => self.insert(at, id),
            };
            if id == endpoint {
                self.slots.items_mut()[i].endpoint = true;
            }
        }
        Ok(())
    }

    /// Undoes [`Table::preserve`] for the endpoint at the end of `path`.
    pub fn unpreserve(&mut self, path: &[DevId]) -> Result<(), TableError> {
        let endpoint = check_path(path)?;
        match self.find(endpoint) {
            Ok(i) if self.slots.items()[i].endpoint => {}
            _ => return Err(TableError::NotPreserved),
        }
        self.release(path.iter().copied())?;
        if let Ok(i) = self.find(endpoint) {
            self.slots.items_mut()[i].endpoint = false;
        }
        Ok(())
    }

    /// In the incoming kernel: an endpoint is done with the Live Update; it and the bridges
    /// above count one device less.
    ///
    /// `path` holds the endpoint and every bridge above it, in either order: a walk up the
    /// hierarchy, taken twice, so that finishing needs no memory and so cannot fail for want
    /// of it.
    pub fn finish(&mut self, path: impl Iterator<Item = DevId> + Clone) -> Result<(), TableError> {
        let mut rest = path.clone();
        while let Some(id) = rest.next() {
            if rest.clone().any(|other| other == id) {
                return Err(TableError::BadPath);
            }
        }
        if path.clone().next().is_none() {
            return Err(TableError::BadPath);
        }
        self.release(path)
    }

    /// Whether every entry is sorted, unique and counted, as the table promises.
    pub fn is_consistent(&self) -> bool {
        let items = self.slots.items();
        items.iter().all(|s| s.entry.refcount > 0)
            && items.windows(2).all(|w| w[0].entry.id < w[1].entry.id)
    }

    fn release(&mut self, path: impl Iterator<Item = DevId> + Clone) -> Result<(), TableError> {
        if path.clone().any(|id| self.find(id).is_err()) {
            return Err(TableError::NotPreserved);
        }
        for id in path {
            if let Ok(i) = self.find(id) {
                let slot = &mut self.slots.items_mut()[i];
                slot.entry.refcount -= 1;
                if slot.entry.refcount == 0 {
                    self.remove(i);
                }
            }
        }
        Ok(())
    }

    fn find(&self, id: DevId) -> Result<usize, usize> {
        self.slots.items().binary_search_by_key(&id, |s| s.entry.id)
    }

    /// Inserts `id` with refcount 1 at `at`, within reserved room.
    fn insert(&mut self, at: usize, id: DevId) -> usize {
        self.slots.push_reserved(Slot {
            entry: Entry { id, refcount: 1 },
            endpoint: false,
        });
        self.slots.items_mut()[at..].rotate_right(1);
        at
    }

    fn remove(&mut self, at: usize) {
        self.slots.items_mut()[at..].rotate_left(1);
        self.slots.pop();
    }
}

/// The endpoint of a well-formed path.
fn check_path(path: &[DevId]) -> Result<DevId, TableError> {
    let endpoint = *path.last().ok_or(TableError::BadPath)?;
    for (i, id) in path.iter().enumerate() {
        if path[i + 1..].contains(id) {
            return Err(TableError::BadPath);
        }
    }
    Ok(endpoint)
}
