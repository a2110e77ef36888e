//! Transactions: a recorded trace as a Sentry `transaction` payload, with its dynamic sampling
//! context for the envelope header.

use serde_json::{json, Map, Value};

use super::common::Common;
use super::time::{unix_float, Ids};
use crate::batch::{TraceSpan, Transaction};

/// Where spans recorded by this crate come from (Sentry's `origin`).
const ORIGIN: &str = "auto.tracing";

fn span_json(common: &Common<'_>, trace_id: &str, span: &TraceSpan) -> Value {
    let mut object = Map::new();
    object.insert("trace_id".into(), trace_id.into());
    object.insert("span_id".into(), span.span_id.to_string().into());
    if let Some(parent) = span.parent_span_id {
        object.insert("parent_span_id".into(), parent.to_string().into());
    }
    object.insert("same_process_as_parent".into(), true.into());
    object.insert("op".into(), span.op.as_str().into());
    let description = span.description.as_deref().unwrap_or(span.name.as_str());
    object.insert("description".into(), description.into());
    object.insert("start_timestamp".into(), unix_float(span.start).into());
    object.insert("timestamp".into(), unix_float(span.end).into());
    object.insert("origin".into(), ORIGIN.into());
    object.insert("status".into(), span.status.as_str().into());
    let mut data = common.fields(&span.fields);
    if let Value::Object(data) = &mut data {
        data.insert("code.namespace".into(), span.target.into());
    }
    object.insert("data".into(), data);
    Value::Object(object)
}

/// The `transaction` payload and its event id.
pub(crate) fn encode(common: &Common<'_>, tx: &Transaction, ids: &mut Ids) -> (String, Vec<u8>) {
    let event_id = ids.uuid();
    let trace_id = tx.trace_id.to_string();
    let root = &tx.root;
    let mut trace = Map::new();
    trace.insert("type".into(), "trace".into());
    trace.insert("trace_id".into(), trace_id.as_str().into());
    trace.insert("span_id".into(), root.span_id.to_string().into());
    if let Some(parent) = root.parent_span_id {
        trace.insert("parent_span_id".into(), parent.to_string().into());
    }
    trace.insert("op".into(), root.op.as_str().into());
    trace.insert("status".into(), root.status.as_str().into());
    trace.insert("origin".into(), ORIGIN.into());
    trace.insert("data".into(), common.fields(&root.fields));
    let spans: Vec<Value> = tx.spans.iter().map(|s| span_json(common, &trace_id, s)).collect();
    let mut event = Map::new();
    event.insert("type".into(), "transaction".into());
    event.insert("event_id".into(), event_id.clone().into());
    event.insert("transaction".into(), root.name.as_str().into());
    event.insert("transaction_info".into(), json!({ "source": "custom" }));
    event.insert("start_timestamp".into(), unix_float(root.start).into());
    event.insert("timestamp".into(), unix_float(root.end).into());
    event.insert("contexts".into(), json!({ "trace": Value::Object(trace) }));
    event.insert("spans".into(), Value::Array(spans));
    if tx.dropped_spans > 0 {
        // Spans past `max_spans` (also in a client report, as `buffer_overflow`): the original
        // length of `spans`, as Sentry's SDKs annotate a trimmed list.
        let total = tx.spans.len() as u64 + u64::from(tx.dropped_spans);
        event.insert("_meta".into(), json!({ "spans": { "": { "len": total } } }));
    }
    event.insert("tags".into(), common.tags(std::iter::empty()));
    common.decorate(&mut event);
    let bytes = serde_json::to_vec(&Value::Object(event)).unwrap_or_default();
    (event_id, bytes)
}

/// The dynamic sampling context of a transaction: the upstream one, frozen, or ours.
pub(crate) fn dsc(
    common: &Common<'_>,
    tx: &Transaction,
    public_key: &str,
    org_id: Option<u64>,
) -> Value {
    if let Some(upstream) = &tx.upstream_baggage {
        let object: Map<String, Value> =
            upstream.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect();
        return Value::Object(object);
    }
    let mut dsc = Map::new();
    dsc.insert("trace_id".into(), tx.trace_id.to_string().into());
    dsc.insert("public_key".into(), public_key.into());
    dsc.insert("sample_rate".into(), tx.sampling.sample_rate.to_string().into());
    dsc.insert(
        "sample_rand".into(),
        format!("{:.6}", tx.sampling.sample_rand.min(0.999_999)).into(),
    );
    dsc.insert("sampled".into(), tx.sampling.sampled.to_string().into());
    if let Some(release) = common.release {
        dsc.insert("release".into(), release.into());
    }
    if let Some(environment) = common.environment {
        dsc.insert("environment".into(), environment.into());
    }
    dsc.insert("transaction".into(), tx.root.name.as_str().into());
    if let Some(org_id) = org_id {
        dsc.insert("org_id".into(), org_id.to_string().into());
    }
    Value::Object(dsc)
}
