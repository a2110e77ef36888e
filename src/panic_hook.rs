//! The opt-in panic hook: a panic becomes an unhandled error, the process session crashes, and
//! the pipeline flushes within its shutdown timeout before the panic goes on.

use std::backtrace::Backtrace;
use std::panic::PanicHookInfo;
use std::sync::{Arc, Weak};
use std::time::SystemTime;

use tracing_core::callsite::{Callsite, Identifier};
use tracing_core::field::FieldSet;
use tracing_core::metadata::Kind;
use tracing_core::subscriber::Interest;
use tracing_core::{Level, Metadata};

use crate::batch::{ErrorEvent, FieldValue};
use crate::flush::Control;

/// The callsite panics are reported under (target `panic`).
struct PanicCallsite;

impl Callsite for PanicCallsite {
    fn set_interest(&self, _: Interest) {}

    fn metadata(&self) -> &Metadata<'_> {
        &PANIC_METADATA
    }
}

static PANIC_CALLSITE: PanicCallsite = PanicCallsite;

pub(crate) static PANIC_METADATA: Metadata<'static> = Metadata::new(
    "panic",
    "panic",
    Level::ERROR,
    None,
    None,
    None,
    FieldSet::new(&[], Identifier(&PANIC_CALLSITE)),
    Kind::EVENT,
);

/// Installs the hook, chained after the hook in place (which still prints the panic).
pub(crate) fn install(control: Weak<Control>) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        previous(info);
        if let Some(control) = control.upgrade() {
            report(&control, info);
        }
    }));
}

fn report(control: &Arc<Control>, info: &PanicHookInfo<'_>) {
    let shared = control.shared();
    if shared.is_closed() {
        return;
    }
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "Box<dyn Any>".to_owned());
    let mut fields = Vec::new();
    if let Some(location) = info.location() {
        fields.push((
            "location",
            FieldValue::Str(format!(
                "{}:{}:{}",
                location.file(),
                location.line(),
                location.column()
            )),
        ));
    }
    if let Some(session) = &shared.session {
        session.crash();
    }
    shared.submit_error(ErrorEvent {
        message: Some(message.clone()),
        fields,
        error_chain: vec![message],
        error_types: vec!["panic".to_owned()],
        handled: false,
        stacktrace: Some(Arc::new(Backtrace::force_capture())),
        thread: std::thread::current().name().map(str::to_owned),
        ..ErrorEvent::new(&PANIC_METADATA, SystemTime::now())
    });
    // The process may end with this panic: deliver now, within the shutdown deadline.
    control.flush(shared.config.shutdown_timeout);
}
