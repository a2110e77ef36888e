use std::sync::Arc;
use std::time::Instant;

use super::part::{chunks, Kind, Part, PART_RECORDS};
use super::queue::{Barrier, Next, Queue};
use crate::batch::Batch;
use crate::flush::ticket::FlushTicket;

#[test]
fn chunks_keep_every_item_in_order_in_runs_of_at_most_part_records() {
    let runs = chunks((0..40).collect::<Vec<u32>>());
    let sizes: Vec<usize> = runs.iter().map(Vec::len).collect();
    assert_eq!(sizes, [16, 16, 8]);
    assert_eq!(runs.concat(), (0..40).collect::<Vec<u32>>());
    assert_eq!(chunks(Vec::<u32>::new()), vec![Vec::<u32>::new()]);
    // Each run holds its own items only, not the capacity of the list it came from.
    assert!(runs.iter().all(|run| run.capacity() <= PART_RECORDS), "{runs:?}");
    // A large batch is cut into runs of its own items, in order.
    let many = chunks((0..1_000_000u32).collect::<Vec<_>>());
    assert_eq!(many.len(), 62_500);
    assert!(many.iter().all(|run| run.len() == PART_RECORDS && run.capacity() == PART_RECORDS));
}

fn part(kind: Kind) -> Part {
    Part { kind, batch: Arc::new(Batch::default()) }
}

fn push(queue: &mut Queue, kind: Kind) {
    let seq = queue.next_seq;
    queue.next_seq += 1;
    queue.rooms[kind as usize].push_back((seq, part(kind)));
}

fn kind_of(next: Option<Next>) -> Option<Kind> {
    match next {
        Some(Next::Export(part)) => Some(part.kind),
        _ => None,
    }
}

#[test]
fn the_most_urgent_kind_goes_first_and_a_barrier_waits_for_what_came_before_it() {
    let mut queue = Queue::new();
    push(&mut queue, Kind::Transactions);
    push(&mut queue, Kind::Metrics);
    let (ticket, _) = FlushTicket::new(Instant::now());
    let seq = queue.next_seq;
    queue.next_seq += 1;
    queue.barriers.push_back(Barrier { seq, ticket: Arc::new(ticket), shutdown: false });
    push(&mut queue, Kind::Sessions);
    // Before the barrier: metrics before transactions; the session queued after the barrier
    // waits for it, urgent as it is.
    assert_eq!(kind_of(queue.next()), Some(Kind::Metrics));
    assert_eq!(kind_of(queue.next()), Some(Kind::Transactions));
    assert!(matches!(queue.next(), Some(Next::Barrier(_))));
    assert_eq!(kind_of(queue.next()), Some(Kind::Sessions));
    assert!(queue.next().is_none());
    queue.orphaned = true;
    assert!(matches!(queue.next(), Some(Next::Stop)));
}
