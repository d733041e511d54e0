/// Conclave's anchor on IOTA Rebased: one call per signed record (a JWT), emitted as an
/// event so every participant can read the federation's records back in order.
module conclave_anchor::anchor;

use iota::event;

public struct Anchored has copy, drop {
    sender: address,
    record: vector<u8>,
}

public fun anchor(record: vector<u8>, ctx: &TxContext) {
    event::emit(Anchored { sender: ctx.sender(), record });
}
