//! Breadcrumbs: the last few lower-level events of a thread, attached to the next captured error.
//!
//! The ring reuses its entries' buffers, so keeping a breadcrumb allocates only for string fields
//! (and not at all for a message once the buffer has grown).

use std::collections::VecDeque;
use std::fmt::{self, Write as _};
use std::time::SystemTime;

use tracing_core::field::{Field, Visit};
use tracing_core::Event;

use super::plan::is_sensitive;
use crate::batch::{Breadcrumb, FieldValue};
use crate::fields;
use crate::scrub::FILTERED;

/// A bounded ring of breadcrumbs.
pub(crate) struct Breadcrumbs {
    ring: VecDeque<Breadcrumb>,
    capacity: usize,
}

impl Breadcrumbs {
    pub(crate) fn new(capacity: usize) -> Self {
        Breadcrumbs { ring: VecDeque::with_capacity(capacity), capacity }
    }

    /// Keeps `event`, dropping the oldest breadcrumb when the ring is full.
    /// Fields whose bit is set in `sensitive` are kept as `[Filtered]`.
    pub(crate) fn push(&mut self, event: &Event<'_>, sensitive: u64) {
        if self.capacity == 0 {
            return;
        }
        let meta = event.metadata();
        let mut crumb = if self.ring.len() >= self.capacity {
            match self.ring.pop_front() {
                Some(mut old) => {
                    old.message.clear();
                    old.fields.clear();
                    old.timestamp = SystemTime::now();
                    old.level = *meta.level();
                    old.target = meta.target();
                    old
                }
                None => return,
            }
        } else {
            Breadcrumb {
                timestamp: SystemTime::now(),
                level: *meta.level(),
                target: meta.target(),
                message: String::new(),
                fields: Vec::new(),
            }
        };
        event.record(&mut CrumbVisitor(&mut crumb, sensitive));
        self.ring.push_back(crumb);
    }

    /// A copy of the ring, oldest first.
    pub(crate) fn snapshot(&self) -> Vec<Breadcrumb> {
        self.ring.iter().cloned().collect()
    }
}

struct CrumbVisitor<'a>(&'a mut Breadcrumb, u64);

impl CrumbVisitor<'_> {
    fn field(&mut self, field: &Field, value: FieldValue) {
        let value = if is_sensitive(self.1, field.index()) {
            FieldValue::Str(FILTERED.to_owned())
        } else {
            value
        };
        self.0.fields.push((field.name(), value));
    }
}

impl Visit for CrumbVisitor<'_> {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, FieldValue::I64(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, FieldValue::U64(value));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.field(field, FieldValue::I128(value));
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.field(field, FieldValue::U128(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.field(field, FieldValue::F64(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, FieldValue::Bool(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == fields::MESSAGE {
            self.0.message.push_str(value);
        } else {
            self.field(field, FieldValue::Str(value.to_owned()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == fields::MESSAGE {
            let _ = write!(self.0.message, "{value:?}");
        } else {
            self.field(field, FieldValue::Text(format!("{value:?}")));
        }
    }
}
