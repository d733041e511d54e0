/// Conclave's anchor on IOTA Rebased: one call per signed record (a JWT), emitted as an
/// event so every participant can read the federation's records back in order with
/// `queryEvents({ MoveEventType: "<package>::anchor::Anchored" })`. The contract stores
/// nothing and checks nothing: signatures are checked by every reader, off chain.
module conclave_anchor::anchor;

use iota::event;

/// What `anchor` emits: who paid for the transaction, and the record's UTF-8 bytes.
public struct Anchored has copy, drop {
    sender: address,
    record: vector<u8>,
}

/// Anchors one record. Callable from a programmable transaction (`moveCall`).
public fun anchor(record: vector<u8>, ctx: &TxContext) {
    event::emit(Anchored { sender: ctx.sender(), record });
}

/// What `anchor_root` emits: a Merkle root (RFC 6962 shape, see src/ledger/merkle.ts) over
/// `count` records, and where the batch of records can be fetched (a content CID).
public struct AnchoredRoot has copy, drop {
    sender: address,
    root: vector<u8>,
    count: u64,
    batch: std::string::String,
}

/// Anchors a batch of records by their Merkle root: one transaction, one fee, per round.
public fun anchor_root(root: vector<u8>, count: u64, batch: std::string::String, ctx: &TxContext) {
    assert!(root.length() == 32, 0);
    event::emit(AnchoredRoot { sender: ctx.sender(), root, count, batch });
}
