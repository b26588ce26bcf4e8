"""Small web3 helpers for HashHouse's Ethereum custody: connecting, deploying the committed
contract artifacts, ERC-20 transfers that also work with tokens whose ``transfer`` returns
nothing (USDT on mainnet), and the Safe multisig (deploy, hash, sign, execute).

Transactions are signed locally when ``sender`` is a private key (hex string, 32 bytes or
an eth-account ``LocalAccount``); an address as ``sender`` uses the node's
``eth_sendTransaction`` (only dev nodes such as anvil hold unlocked accounts).

Token transfers never decode a returned bool: a transfer succeeded when its receipt has
status 1 and the token emitted the matching ``Transfer`` log (:func:`transfer_succeeded`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address, to_hex
from hexbytes import HexBytes
from web3 import Web3
from web3.logs import DISCARD
from web3.types import TxReceipt

ARTIFACTS_DIR = Path(__file__).resolve().parent / "contracts" / "artifacts"
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
TRANSFER_TOPIC = HexBytes(keccak(text="Transfer(address,address,uint256)"))
REFUSED_TOPIC = HexBytes(keccak(text="Refused(uint256,address,address,uint256)"))

ERC20_ABI: list[dict[str, Any]] = [
    {"type": "function", "name": "balanceOf", "stateMutability": "view",
     "inputs": [{"name": "owner", "type": "address"}],
     "outputs": [{"name": "", "type": "uint256"}]},
    {"type": "function", "name": "decimals", "stateMutability": "view",
     "inputs": [], "outputs": [{"name": "", "type": "uint8"}]},
    {"type": "function", "name": "symbol", "stateMutability": "view",
     "inputs": [], "outputs": [{"name": "", "type": "string"}]},
    # No outputs on purpose: USDT returns nothing, and success is read from the receipt.
    {"type": "function", "name": "transfer", "stateMutability": "nonpayable",
     "inputs": [{"name": "to", "type": "address"}, {"name": "value", "type": "uint256"}],
     "outputs": []},
    {"type": "event", "name": "Transfer", "anonymous": False,
     "inputs": [{"name": "from", "type": "address", "indexed": True},
                {"name": "to", "type": "address", "indexed": True},
                {"name": "value", "type": "uint256", "indexed": False}]},
]

Sender = str | bytes | LocalAccount


class ChainError(RuntimeError):
    """A deploy or set-up transaction failed on chain."""


class Transfer(NamedTuple):
    token: str          # checksum address of the token contract
    sender: str
    recipient: str
    amount: int         # in the token's smallest unit
    log_index: int


class TxResult(NamedTuple):
    ok: bool            # receipt status 1 (and, for transfers, the matching Transfer log)
    tx_hash: str        # 0x-hex
    receipt: TxReceipt


class SafeSignature(NamedTuple):
    owner: str          # checksum address of the signing owner
    signature: bytes    # 65 bytes: r, s, v (v = 27 or 28)


# --- connection and artifacts -------------------------------------------------------------

def connect(url: str, timeout: float = 10.0, retries: bool = False) -> Web3:
    """A Web3 over HTTP with a short request timeout. Without ``retries`` a dead node fails
    the call at once instead of web3's backoff (the watcher has its own loop)."""
    kwargs: dict[str, Any] = {"request_kwargs": {"timeout": timeout}}
    if not retries:
        kwargs["exception_retry_configuration"] = None
    return Web3(Web3.HTTPProvider(url, **kwargs))


@functools.cache
def artifact(name: str) -> dict[str, Any]:
    """``{"abi": [...], "bytecode": "0x..."}`` of a committed contract artifact (TestToken,
    TetherToken, Safe, SafeL2, SafeProxyFactory, MultiSendCallOnly,
    CompatibilityFallbackHandler). Shared: do not modify the returned dict."""
    path = ARTIFACTS_DIR / f"{name}.json"
    if not path.is_file():
        raise KeyError(f"no contract artifact {name!r} in {ARTIFACTS_DIR}")
    return json.loads(path.read_text())


def contract(w3: Web3, name: str, address: str) -> Any:
    """The web3 contract object of artifact ``name`` at ``address``."""
    return w3.eth.contract(address=to_checksum_address(address), abi=artifact(name)["abi"])


def erc20(w3: Web3, token: str) -> Any:
    return w3.eth.contract(address=to_checksum_address(token), abi=ERC20_ABI)


# --- sending --------------------------------------------------------------------------------

def _account(sender: Sender) -> tuple[str, LocalAccount | None]:
    if isinstance(sender, LocalAccount):
        return sender.address, sender
    if isinstance(sender, bytes) and len(sender) == 32:
        acct = Account.from_key(sender)
        return acct.address, acct
    if isinstance(sender, str):
        digits = sender[2:] if sender[:2].lower() == "0x" else sender
        if len(digits) == 64:
            acct = Account.from_key(sender)
            return acct.address, acct
        if len(digits) == 40:
            return to_checksum_address(sender), None
    raise ValueError("sender must be a private key, a LocalAccount or an address")


def address_of(sender: Sender) -> str:
    """The checksum address of a key, account or address."""
    return _account(sender)[0]


def fill_tx(w3: Web3, tx: dict[str, Any], sender: Sender) -> dict[str, Any]:
    """``tx`` completed with from, chainId, nonce (pending), EIP-1559 fees and gas (an
    estimate plus 20 %). An estimate of a call that reverts raises web3's
    ``ContractLogicError``; pass ``gas`` to send such a call anyway."""
    addr, _ = _account(sender)
    tx = dict(tx)
    tx["from"] = addr
    tx.setdefault("value", 0)
    tx.setdefault("chainId", w3.eth.chain_id)
    tx.setdefault("nonce", w3.eth.get_transaction_count(addr, "pending"))
    if "gasPrice" not in tx and "maxFeePerGas" not in tx:
        base = w3.eth.get_block("latest").get("baseFeePerGas")
        if base is None:
            tx["gasPrice"] = w3.eth.gas_price
        else:
            tip = w3.eth.max_priority_fee
            tx["maxPriorityFeePerGas"] = tip
            tx["maxFeePerGas"] = 2 * base + tip
    if "gas" not in tx:
        tx["gas"] = w3.eth.estimate_gas(tx) * 6 // 5
    return tx


def send_tx(w3: Web3, tx: dict[str, Any], sender: Sender) -> str:
    """Fill, sign (or hand to the node for an unlocked address) and send; the 0x tx hash.
    Does not wait for mining."""
    tx = fill_tx(w3, tx, sender)
    _, acct = _account(sender)
    if acct is None:
        tx_hash = w3.eth.send_transaction(tx)
    else:
        tx_hash = w3.eth.send_raw_transaction(acct.sign_transaction(tx).raw_transaction)
    return Web3.to_hex(tx_hash)


def wait(w3: Web3, tx_hash: str, timeout: float = 120.0) -> TxReceipt:
    return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout, poll_latency=0.1)


def transact(w3: Web3, tx: dict[str, Any], sender: Sender,
             timeout: float = 120.0) -> TxResult:
    """Send ``tx`` and wait for its receipt; ``ok`` is the receipt status."""
    tx_hash = send_tx(w3, tx, sender)
    receipt = wait(w3, tx_hash, timeout)
    return TxResult(receipt["status"] == 1, tx_hash, receipt)


def _abi_type(item: dict[str, Any]) -> str:
    t = item["type"]
    if t.startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in item["components"]) + ")" + t[5:]
    return t


def deploy(w3: Web3, name: str, *args: Any, sender: Sender, timeout: float = 120.0) -> str:
    """Deploy artifact ``name`` with constructor ``args``; waits for the receipt and returns
    the contract's checksum address. Raises :class:`ChainError` when the deploy failed."""
    art = artifact(name)
    ctor = next((e for e in art["abi"] if e["type"] == "constructor"), {"inputs": []})
    data = HexBytes(art["bytecode"]) + abi_encode([_abi_type(i) for i in ctor["inputs"]],
                                                 list(args))
    res = transact(w3, {"data": Web3.to_hex(data)}, sender, timeout)
    address = res.receipt.get("contractAddress")
    if not res.ok or not address or not w3.eth.get_code(address):
        raise ChainError(f"deploying {name} failed (tx {res.tx_hash})")
    return to_checksum_address(address)


# --- ERC-20 -----------------------------------------------------------------------------

def erc20_transfer_data(to: str, amount: int) -> bytes:
    """Call data of ``transfer(to, amount)``."""
    return keccak(text="transfer(address,uint256)")[:4] + abi_encode(
        ["address", "uint256"], [to_checksum_address(to), amount])


def erc20_transfer_tx(w3: Web3, token: str, to: str, amount: int, sender: Sender, *,
                      gas: int | None = None, nonce: int | None = None) -> dict[str, Any]:
    """A filled, unsigned transaction moving ``amount`` of ``token`` from ``sender`` to
    ``to``. Nothing in it depends on what ``transfer`` returns."""
    tx: dict[str, Any] = {"to": to_checksum_address(token), "value": 0,
                          "data": Web3.to_hex(erc20_transfer_data(to, amount))}
    if gas is not None:
        tx["gas"] = gas
    if nonce is not None:
        tx["nonce"] = nonce
    return fill_tx(w3, tx, sender)


def transfer_logs(receipt: TxReceipt, token: str | None = None) -> list[Transfer]:
    """The ERC-20 ``Transfer`` logs of a receipt (of one token when given)."""
    want = to_checksum_address(token) if token else None
    out = []
    for log in receipt["logs"]:
        topics = log["topics"]
        if len(topics) != 3 or HexBytes(topics[0]) != TRANSFER_TOPIC:
            continue
        addr = to_checksum_address(log["address"])
        if want and addr != want:
            continue
        data = HexBytes(log["data"])
        if len(data) != 32:
            continue
        out.append(Transfer(addr, to_checksum_address(HexBytes(topics[1])[-20:]),
                            to_checksum_address(HexBytes(topics[2])[-20:]),
                            int.from_bytes(data, "big"), log["logIndex"]))
    return out


def transfer_succeeded(receipt: TxReceipt, token: str, sender: str, to: str,
                       amount: int) -> bool:
    """Status 1 and a ``Transfer(sender, to, amount)`` log emitted by ``token``."""
    if receipt["status"] != 1:
        return False
    want = (to_checksum_address(sender), to_checksum_address(to), amount)
    return any((t.sender, t.recipient, t.amount) == want
               for t in transfer_logs(receipt, token))


def refused_amount(receipt: TxReceipt, batch_pay: str) -> int:
    """What the BatchPay contract at ``batch_pay`` did NOT pay in ``receipt``: the sum of
    its ``Refused`` logs (chain units; 0 for any other transaction)."""
    want = to_checksum_address(batch_pay)
    return sum(int.from_bytes(HexBytes(log["data"]), "big") for log in receipt["logs"]
               if log["topics"] and HexBytes(log["topics"][0]) == REFUSED_TOPIC
               and to_checksum_address(log["address"]) == want)


def erc20_transfer(w3: Web3, token: str, to: str, amount: int, sender: Sender, *,
                   gas: int | None = None, timeout: float = 120.0) -> TxResult:
    """Send a token transfer and wait; ``ok`` per :func:`transfer_succeeded`."""
    tx = erc20_transfer_tx(w3, token, to, amount, sender, gas=gas)
    tx_hash = send_tx(w3, tx, sender)
    receipt = wait(w3, tx_hash, timeout)
    ok = transfer_succeeded(receipt, token, address_of(sender), to, amount)
    return TxResult(ok, tx_hash, receipt)


# --- Safe multisig (v1.4.1) -------------------------------------------------------------

_DOMAIN_TYPEHASH = keccak(text="EIP712Domain(uint256 chainId,address verifyingContract)")
_SAFE_TX_TYPEHASH = keccak(
    text="SafeTx(address to,uint256 value,bytes data,uint8 operation,uint256 safeTxGas,"
         "uint256 baseGas,uint256 gasPrice,address gasToken,address refundReceiver,"
         "uint256 nonce)")
_EXECUTION_SUCCESS = HexBytes(keccak(text="ExecutionSuccess(bytes32,uint256)"))


def deploy_safe(w3: Web3, owners: Sequence[str], threshold: int, deployer: Sender, *,
                singleton: str | None = None, factory: str | None = None,
                fallback_handler: str = ZERO_ADDRESS, salt_nonce: int | None = None,
                timeout: float = 120.0) -> str:
    """A new Safe proxy with ``owners`` (addresses) and ``threshold``, created through
    ``SafeProxyFactory.createProxyWithNonce`` with ``setup`` as initializer. The singleton
    (SafeL2, which logs every execution) and the factory are deployed first unless given.
    ``salt_nonce`` defaults to the deployer's nonce (so repeated calls do not collide)."""
    owners = [to_checksum_address(o) for o in owners]
    if not 1 <= threshold <= len(owners):
        raise ValueError("threshold must be between 1 and the number of owners")
    singleton = singleton or deploy(w3, "SafeL2", sender=deployer, timeout=timeout)
    factory = factory or deploy(w3, "SafeProxyFactory", sender=deployer, timeout=timeout)
    if salt_nonce is None:
        salt_nonce = w3.eth.get_transaction_count(address_of(deployer), "pending")
    safe_abi = contract(w3, "SafeL2", singleton)
    initializer = safe_abi.encode_abi(
        "setup", args=[owners, threshold, ZERO_ADDRESS, b"",
                       to_checksum_address(fallback_handler), ZERO_ADDRESS, 0, ZERO_ADDRESS])
    fac = contract(w3, "SafeProxyFactory", factory)
    data = fac.encode_abi("createProxyWithNonce",
                          args=[to_checksum_address(singleton), initializer, salt_nonce])
    res = transact(w3, {"to": fac.address, "data": data}, deployer, timeout)
    created = [] if not res.ok else fac.events.ProxyCreation().process_receipt(
        res.receipt, errors=DISCARD)
    if not created:
        raise ChainError(f"creating the Safe failed (tx {res.tx_hash})")
    safe = to_checksum_address(created[0]["args"]["proxy"])
    proxy = contract(w3, "SafeL2", safe)
    if proxy.functions.getThreshold().call() != threshold or \
            sorted(proxy.functions.getOwners().call()) != sorted(owners):
        raise ChainError(f"the Safe at {safe} was not set up as asked")
    return safe


def safe_execution(w3: Web3, safe: str, safe_tx_hash: str | bytes, from_block: int,
                   to_block: int | None = None, step: int = 5_000) -> str | None:
    """The hash of the transaction in which ``safe`` executed the Safe transaction
    ``safe_tx_hash`` (its ``ExecutionSuccess`` log, whoever sent it), searched from
    ``from_block`` to ``to_block`` (default: the head) in ranges of ``step`` blocks; None
    when the Safe did not execute it. The Safe 1.4.1 contracts we deploy index the hash
    (the log's second topic); Safe 1.3.0 has it in the data: both are matched, so the
    filter is the Safe's address and the event only. A node error raises: it is never
    taken for "not executed"."""
    want = bytes(HexBytes(safe_tx_hash))
    head = int(w3.eth.block_number) if to_block is None else to_block
    start = max(0, int(from_block))
    address = to_checksum_address(safe)
    while start <= head:
        end = min(head, start + step - 1)
        for log in w3.eth.get_logs({"address": address, "topics": [_EXECUTION_SUCCESS],
                                    "fromBlock": start, "toBlock": end}):
            topics = log["topics"]
            if (len(topics) > 1 and bytes(HexBytes(topics[1])) == want) \
                    or bytes(HexBytes(log["data"]))[:32] == want:
                return to_hex(log["transactionHash"])
        start = end + 1
    return None


def safe_nonce(w3: Web3, safe: str) -> int:
    return contract(w3, "SafeL2", safe).functions.nonce().call()


def safe_tx_hash(chain_id: int, safe: str, to: str, value: int, data: bytes, nonce: int, *,
                 operation: int = 0, safe_tx_gas: int = 0, base_gas: int = 0,
                 gas_price: int = 0, gas_token: str = ZERO_ADDRESS,
                 refund_receiver: str = ZERO_ADDRESS) -> bytes:
    """The EIP-712 hash the owners sign (``Safe.getTransactionHash``), computed offline so
    a cold key never needs the chain."""
    domain = keccak(abi_encode(["bytes32", "uint256", "address"],
                               [_DOMAIN_TYPEHASH, chain_id, to_checksum_address(safe)]))
    struct = keccak(abi_encode(
        ["bytes32", "address", "uint256", "bytes32", "uint8", "uint256", "uint256",
         "uint256", "address", "address", "uint256"],
        [_SAFE_TX_TYPEHASH, to_checksum_address(to), value, keccak(bytes(data)), operation,
         safe_tx_gas, base_gas, gas_price, to_checksum_address(gas_token),
         to_checksum_address(refund_receiver), nonce]))
    return keccak(b"\x19\x01" + domain + struct)


def sign_safe_tx(private_key: str | bytes, tx_hash: bytes) -> SafeSignature:
    """An owner's ECDSA signature of the Safe transaction hash itself (no message prefix),
    in the Safe's format r ‖ s ‖ v with v 27 or 28."""
    acct = Account.from_key(private_key)
    signed = Account.unsafe_sign_hash(bytes(tx_hash), acct.key)
    sig = signed.r.to_bytes(32, "big") + signed.s.to_bytes(32, "big") + bytes([signed.v])
    return SafeSignature(acct.address, sig)


def pack_signatures(signatures: Iterable[SafeSignature]) -> bytes:
    """The ``signatures`` argument of ``execTransaction``: each 65 bytes, sorted by owner
    address ascending (the Safe refuses any other order)."""
    return b"".join(s.signature for s in sorted(signatures, key=lambda s: int(s.owner, 16)))


def exec_safe_tx(w3: Web3, safe: str, to: str, value: int, data: bytes,
                 signatures: Iterable[SafeSignature] | bytes, sender: Sender, *,
                 operation: int = 0, gas: int | None = None,
                 timeout: float = 120.0) -> TxResult:
    """Execute a Safe transaction (safeTxGas, baseGas, gasPrice 0: no refund) signed by the
    owners; ``sender`` pays the gas and need not be an owner. ``ok`` means status 1 and the
    Safe's ``ExecutionSuccess`` log. With too few or wrong signatures the gas estimate
    raises ``ContractLogicError`` (Safe error codes GS020, GS026, ...); with ``gas`` given
    the transaction is sent anyway and reverts (``ok`` False)."""
    packed = signatures if isinstance(signatures, bytes | bytearray) else \
        pack_signatures(signatures)
    safe_c = contract(w3, "SafeL2", safe)
    call = safe_c.encode_abi("execTransaction", args=[
        to_checksum_address(to), value, bytes(data), operation, 0, 0, 0, ZERO_ADDRESS,
        ZERO_ADDRESS, bytes(packed)])
    tx: dict[str, Any] = {"to": safe_c.address, "data": call}
    if gas is not None:
        tx["gas"] = gas
    res = transact(w3, tx, sender, timeout)
    ok = res.ok and any(
        HexBytes(log["topics"][0]) == _EXECUTION_SUCCESS
        and to_checksum_address(log["address"]) == safe_c.address
        for log in res.receipt["logs"] if log["topics"])
    return TxResult(ok, res.tx_hash, res.receipt)


def safe_pay(w3: Web3, safe: str, to: str, value: int, data: bytes,
             owner_keys: Sequence[str | bytes], sender: Sender, **kw: Any) -> TxResult:
    """Hash, sign with each of ``owner_keys`` and execute, at the Safe's current nonce."""
    h = safe_tx_hash(w3.eth.chain_id, safe, to, value, data, safe_nonce(w3, safe),
                     operation=kw.get("operation", 0))
    return exec_safe_tx(w3, safe, to, value, data, [sign_safe_tx(k, h) for k in owner_keys],
                        sender, **kw)


# --- devnet -------------------------------------------------------------------------------

def deploy_devnet(w3: Web3, deployer_key: Sender, safe_owners: Sequence[Sender],
                  threshold: int = 2) -> dict[str, Any]:
    """Deploy what HashHouse's Ethereum side needs on a development chain: USDT (the
    TetherToken look-alike: transfer returns nothing), USDC (TestToken, 6 decimals), and
    a ``threshold``-of-n Safe of ``safe_owners`` (keys or addresses) with its singleton,
    factory, fallback handler and MultiSendCallOnly, and BatchPay ("batch"). The deployer
    owns both tokens (it alone can ``mint``). Returns addresses (and the tokens' and Safe's
    ABI under "abi")."""
    owners = [address_of(o) for o in safe_owners]
    usdt = deploy(w3, "TetherToken", sender=deployer_key)
    usdc = deploy(w3, "TestToken", "USD Coin", "USDC", 6, sender=deployer_key)
    singleton = deploy(w3, "SafeL2", sender=deployer_key)
    factory = deploy(w3, "SafeProxyFactory", sender=deployer_key)
    handler = deploy(w3, "CompatibilityFallbackHandler", sender=deployer_key)
    multisend = deploy(w3, "MultiSendCallOnly", sender=deployer_key)
    safe = deploy_safe(w3, owners, threshold, deployer_key, singleton=singleton,
                       factory=factory, fallback_handler=handler)
    batch = deploy(w3, "BatchPay", sender=deployer_key)
    return {
        "chain_id": w3.eth.chain_id,
        "deployer": address_of(deployer_key),
        "USDT": usdt,
        "USDC": usdc,
        "safe": safe,
        "safe_owners": owners,
        "safe_threshold": threshold,
        "safe_singleton": singleton,
        "safe_proxy_factory": factory,
        "safe_fallback_handler": handler,
        "multisend_call_only": multisend,
        "batch": batch,
        "abi": {"USDT": artifact("TetherToken")["abi"], "USDC": artifact("TestToken")["abi"],
                "safe": artifact("SafeL2")["abi"]},
    }
