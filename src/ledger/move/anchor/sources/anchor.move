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
