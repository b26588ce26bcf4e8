"""Cold spends on a real chain (bcoin regtest): coins paid to cold addresses are spent
through PSBTs that two of the three cosigners sign on their own devices (keys held by the
test); the service checks, combines, finalises and broadcasts through the platform's
adapter, and the node, the judge of validity, accepts, mines and confirms. The change comes
back to a cold change address, which a different pair of cosigners spends again."""

from __future__ import annotations

import pytest

from casino_app.payments.btc import keys, tx
from casino_app.payments.btc import psbt as P
from casino_app.payments.btc.rpc import BitcoinRPC, TransactionRejected
from tests.support.bitcoin import NETWORK, BcoinNode, Funding, fresh_address
from tests.support.cosigners import cosigners, wallet_of

pytestmark = pytest.mark.bitcoin

SIGNERS = cosigners(NETWORK)
WALLET = wallet_of(SIGNERS, NETWORK)
A, B, C = SIGNERS


def cold_utxo(funding: Funding, chain: int, index: int, value: int,
              with_prev_tx: bool = False) -> P.ColdUtxo:
    return P.ColdUtxo(funding.txid, funding.vout, value,
                      WALLET.address(index, chain).script_pubkey, chain, index,
                      prev_tx=funding.raw if with_prev_tx else None)


def test_two_of_three_cosigners_spend_cold_coins_and_the_node_confirms(bitcoin_node: BcoinNode):
    node, rpc = bitcoin_node, bitcoin_node.rpc
    first, second = WALLET.receive_address(0), WALLET.receive_address(1)
    assert rpc.call("validateaddress", first.address)["isvalid"] is True
    f1 = node.fund(first.address, 1_500_000, mine=False)
    f2 = node.fund(second.address, 700_000)
    assert rpc.tx_out(f1.txid, 0).script_pubkey == first.script_pubkey

    # a large withdrawal and a hot-wallet refill, paid from cold, change back to cold
    player = keys.validate_address(fresh_address(), NETWORK)
    hot = keys.validate_address(fresh_address(), NETWORK)
    built = P.build_psbt(WALLET, [cold_utxo(f1, 0, 0, 1_500_000, with_prev_tx=True),
                                  cold_utxo(f2, 0, 1, 700_000)],
                         [P.Payment(player.script_pubkey, 1_200_000),
                          P.Payment(hot.script_pubkey, 600_000)],
                         fee_rate=2, change_index=0)
    assert built.change is not None and built.change.vout == 2

    # two staff members, each on their own device, each from the PSBT they downloaded
    upload_a = P.to_base64(A.sign(built.base64))
    upload_c = C.sign(built.psbt)
    assert P.check_signed(WALLET, built.psbt, upload_a).signers == (A.fingerprint,)
    assert P.check_signed(WALLET, built.psbt, upload_c).signers == (C.fingerprint,)
    final = P.finalize(WALLET, built.psbt, [upload_a, upload_c])
    assert final.txid == built.txid and final.fee == built.fee
    assert final.fee >= 2 * final.vsize

    assert rpc.send_raw_transaction(final.raw) == final.txid
    entry = rpc.mempool_entry(final.txid)
    assert entry is not None and entry.fee == final.fee
    (block_hash,) = node.mine(1)
    mined = rpc.raw_transaction(final.txid)
    assert mined.block_hash == block_hash and mined.confirmations == 1
    assert mined.wtxid == final.wtxid == tx.facts(final.raw).wtxid
    assert [(o.value, o.script_pubkey) for o in mined.outputs] == [
        (1_200_000, player.script_pubkey), (600_000, hot.script_pubkey),
        (built.change.value, WALLET.change_address(0).script_pubkey)]
    assert mined.signals_rbf
    assert rpc.tx_out(f1.txid, f1.vout) is None and rpc.tx_out(f2.txid, f2.vout) is None
    change = rpc.tx_out(final.txid, built.change.vout)
    assert change is not None and change.value == built.change.value

    # the change is cold money too: cosigners B and C spend it
    again = P.build_psbt(WALLET, [P.ColdUtxo(final.txid, built.change.vout, change.value,
                                             change.script_pubkey, 1, 0)],
                         [P.Payment(hot.script_pubkey, 300_000)], fee_rate=1, change_index=1)
    second_final = P.finalize(WALLET, again.psbt, [B.sign(again.psbt), C.sign(again.psbt)])
    assert second_final.signers == (B.fingerprint, C.fingerprint)
    assert rpc.send_raw_transaction(second_final.raw) == again.txid
    node.mine(1)
    assert rpc.raw_transaction(again.txid).confirmations == 1
    assert rpc.raw_transaction(final.txid).confirmations == 2


def test_the_node_refuses_a_witness_with_one_signature(bitcoin_node: BcoinNode):
    """What finalize refuses to make, the node refuses too: one cosigner's signature in
    the witness does not spend a 2-of-3 output."""
    from embit.script import Witness
    from embit.transaction import Transaction

    node = bitcoin_node
    addr = WALLET.receive_address(2)
    funding = node.fund(addr.address, 400_000)
    built = P.build_psbt(WALLET, [cold_utxo(funding, 0, 2, 400_000)],
                         [P.Payment(keys.validate_address(fresh_address(), NETWORK)
                                    .script_pubkey, 100_000)], fee_rate=2, change_index=2)
    signed = P._parse(P.check_signed(WALLET, built.psbt, A.sign(built.psbt)).psbt)
    (sig,) = [v for k, v in signed.inputs[0].items() if k[0] == P.I_PARTIAL_SIG]
    with pytest.raises(P.NotEnoughSignatures):
        P.finalize(WALLET, built.psbt, [A.sign(built.psbt)])
    forged = Transaction.parse(signed.tx_bytes)
    forged.vin[0].witness = Witness([b"", sig, b"", addr.witness_script])
    with BitcoinRPC(node.url, "hashhouse", node.api_key, dialect="bcoin",
                    accept_timeout=2) as quick, pytest.raises(TransactionRejected):
        quick.send_raw_transaction(forged.serialize())  # bcoin: looked up, not found
    # the proper pair spends the same coin
    final = P.finalize(WALLET, built.psbt, [A.sign(built.psbt), B.sign(built.psbt)])
    assert node.rpc.send_raw_transaction(final.raw) == built.txid
    node.mine(1)
    assert node.rpc.raw_transaction(built.txid).confirmations == 1
