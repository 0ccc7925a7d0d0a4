"""Chain backends: one small interface over an in-process EVM and any JSON-RPC node.

- ``InProcessChain``: eth-tester with the py-evm backend, in this process. Auto-mines one block
  per transaction, ten funded accounts with known keys, time travel. The embedded default (the
  demo needs no server).
- ``RpcChain(url, private_keys)``: any Ethereum JSON-RPC endpoint. Transactions are signed
  locally with the given keys and sent raw, so it works with a real node as well as with anvil;
  time travel uses anvil's ``evm_increaseTime`` + ``evm_mine`` (dev nodes only).
- ``start_anvil()``: launches the npm-pinned anvil (``node_modules/.bin/anvil``) on 127.0.0.1
  at a free port with ``--prune-history`` and returns a handle that stops it (its own process
  group, ended by its id).

Both chains run the same hard fork by default (``DEFAULT_HARDFORK``) so gas figures agree.
"""

from __future__ import annotations

import ast
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_tester.exceptions import TransactionFailed
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError, ContractPanicError, Web3RPCError

__all__ = [
    "ANVIL_MNEMONIC",
    "DEFAULT_HARDFORK",
    "AnvilNode",
    "Chain",
    "ChainError",
    "InProcessChain",
    "RpcChain",
    "TransactionReverted",
    "anvil_default_keys",
    "anvil_executable",
    "calldata_floor_gas",
    "revert_data",
    "start_anvil",
]

DEFAULT_HARDFORK = "prague"
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
ANVIL_CHAIN_ID = 31337
REPO_ROOT = Path(__file__).resolve().parents[2]


class ChainError(RuntimeError):
    """The backend cannot do what was asked (node missing, not a dev node, ...)."""


class TransactionReverted(Exception):
    """A transaction (or its gas estimate) reverted. ``data`` is the raw revert data (selector +
    ABI arguments, possibly empty); ``receipt`` is set if it reverted on chain."""

    def __init__(self, message: str, data: bytes = b"", receipt: Any = None):
        super().__init__(message)
        self.data = data
        self.receipt = receipt


def _as_bytes(data: Any) -> bytes | None:
    if isinstance(data, dict):  # some nodes nest it
        data = data.get("data")
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return None
    return None


def revert_data(exc: BaseException) -> bytes:
    """The raw revert data behind a web3 / eth-tester exception (b"" if none is found).

    JSON-RPC nodes put it in ``exc.data`` (hex); eth-tester raises a ``TransactionFailed``
    whose first argument is the raw bytes, re-wrapped by web3's provider as a message, so
    the exception chain is searched too."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        data = _as_bytes(getattr(e, "data", None))
        if data is not None:
            return data
        for arg in getattr(e, "args", ()):
            if isinstance(arg, BaseException) and arg.args:
                arg = arg.args[0]
            if isinstance(arg, (bytes, bytearray)):
                return bytes(arg)
            if isinstance(arg, str):  # eth-tester's eth_call: the repr of the bytes
                found = _bytes_repr(arg)
                if found is not None:
                    return found
        e = e.__cause__ or e.__context__
    return b""


def _bytes_repr(text: str) -> bytes | None:
    """The bytes of a message that is (or ends with) a Python bytes literal."""
    for prefix in ("execution reverted: ", ""):
        if text.startswith(prefix):
            rest = text[len(prefix):]
            if rest[:2] in ("b'", 'b"'):
                try:
                    value = ast.literal_eval(rest)
                except (ValueError, SyntaxError):
                    return None
                return value if isinstance(value, bytes) else None
    return None


class Chain(ABC):
    """What the deploy helpers and the client need from a chain."""

    w3: Web3
    accounts: list[LocalAccount]

    @property
    def chain_id(self) -> int:
        return self.w3.eth.chain_id

    def now(self) -> int:
        """Timestamp of the latest block."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def block_number(self) -> int:
        return int(self.w3.eth.block_number)

    @abstractmethod
    def advance_time(self, seconds: int) -> int:
        """Mine a block at least ``seconds`` after the latest one; return its timestamp."""

    @abstractmethod
    def mine(self, blocks: int = 1) -> None:
        """Mine ``blocks`` empty blocks."""

    @abstractmethod
    def snapshot(self) -> Any:
        """An id to ``revert_to`` later (whole-chain state)."""

    @abstractmethod
    def revert_to(self, snapshot_id: Any) -> None: ...

    def close(self) -> None:
        """Release resources (the chain object is unusable afterwards)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- transactions ------------------------------------------------------------------
    def transact(self, call, sender: LocalAccount, *, value: int = 0, gas: int | None = None):
        """Build ``call`` (a web3 contract function or constructor call) from ``sender``,
        estimate its gas (a revert raises ``TransactionReverted`` with the revert data), sign it
        locally, send it and wait for the receipt. A receipt with status 0 also raises."""
        params: dict[str, Any] = {
            "from": sender.address,
            "nonce": self.w3.eth.get_transaction_count(sender.address, "pending"),
            "chainId": self.chain_id,
            "value": value,
        }
        if gas is not None:
            params["gas"] = gas
        try:
            tx = call.build_transaction(params)
        except (ContractCustomError, ContractLogicError, ContractPanicError, TransactionFailed) as exc:
            raise TransactionReverted(str(exc), revert_data(exc)) from None
        except Web3RPCError as exc:
            data = revert_data(exc)
            if not data and "revert" not in str(exc).lower():
                raise
            raise TransactionReverted(str(exc), data) from None
        if gas is None:  # headroom over the estimate; unused gas is not charged
            tx["gas"] = max(int(tx["gas"] * 1.1) + 10_000, calldata_floor_gas(tx.get("data", b"")) + 10_000)
        signed = sender.sign_transaction(tx)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60, poll_latency=0.01)
        if receipt["status"] != 1:
            raise TransactionReverted(f"transaction {tx_hash.hex()} reverted on chain", b"", receipt)
        return receipt


def calldata_floor_gas(data: bytes | str) -> int:
    """EIP-7623 (prague) minimum gas of a transaction with this calldata: 21,000 + 10 per
    zero byte + 40 per non-zero byte. py-evm's gas estimate leaves it out (anvil's does not),
    so ``transact`` never sets a gas limit below it."""
    if isinstance(data, str):
        data = bytes.fromhex(data[2:] if data.startswith("0x") else data)
    zeros = data.count(0)
    return 21_000 + 10 * (zeros + 4 * (len(data) - zeros))


# --------------------------------------------------------------------------- in-process
class InProcessChain(Chain):
    """eth-tester + py-evm in this process: auto-mining, funded accounts, time travel."""

    def __init__(self, *, hardfork: str = DEFAULT_HARDFORK, n_accounts: int = 10):
        from eth_tester import EthereumTester, PyEVMBackend
        from eth_tester.backends.pyevm.main import get_default_account_keys
        from web3 import EthereumTesterProvider

        vm = _pyevm_vm(hardfork)
        backend = PyEVMBackend(
            genesis_state=PyEVMBackend.generate_genesis_state(num_accounts=n_accounts),
            vm_configuration=((0, vm),),
        )
        self.hardfork = hardfork
        self.tester = EthereumTester(backend)
        self.w3 = Web3(EthereumTesterProvider(self.tester))
        self.accounts = [Account.from_key(k.to_bytes()) for k in get_default_account_keys(n_accounts)]

    def advance_time(self, seconds: int) -> int:
        if seconds < 0:
            raise ValueError("time only moves forward")
        target = self.now() + max(int(seconds), 1)
        # eth-tester mines the travel block one second early; the next block reaches `target`
        self.tester.time_travel(target)
        while self.now() < target:
            self.tester.mine_blocks(1)
        return self.now()

    def mine(self, blocks: int = 1) -> None:
        self.tester.mine_blocks(blocks)

    def snapshot(self) -> Any:
        return self.tester.take_snapshot()

    def revert_to(self, snapshot_id: Any) -> None:
        self.tester.revert_to_snapshot(snapshot_id)


def _pyevm_vm(hardfork: str):
    from eth.vm.forks import CancunVM, PragueVM

    vms = {"cancun": CancunVM, "prague": PragueVM}
    try:
        return vms[hardfork]
    except KeyError:
        raise ChainError(f"in-process hard fork must be one of {sorted(vms)}, got {hardfork!r}") from None


# ----------------------------------------------------------------------------- JSON-RPC
class RpcChain(Chain):
    """Any Ethereum JSON-RPC endpoint; transactions are signed locally with ``private_keys``.

    Without keys, a dev node with anvil's chain id gets anvil's default accounts (its public
    test mnemonic); anything else needs keys.
    """

    def __init__(self, url: str, private_keys: Sequence[bytes | str] | None = None, *, timeout: float = 30):
        self.url = url
        self.w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout}))
        if private_keys is None:
            if self.chain_id != ANVIL_CHAIN_ID:
                raise ChainError("RpcChain needs private_keys for a chain that is not a local anvil")
            private_keys = anvil_default_keys()
        self.accounts = [Account.from_key(k) for k in private_keys]

    def _rpc(self, method: str, params: list) -> Any:
        response = self.w3.provider.make_request(method, params)
        if "error" in response:
            raise ChainError(f"{method}: {response['error']}")
        return response.get("result")

    def advance_time(self, seconds: int) -> int:
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._rpc("evm_increaseTime", [max(int(seconds), 1)])
        self._rpc("evm_mine", [])
        return self.now()

    def mine(self, blocks: int = 1) -> None:
        for _ in range(blocks):
            self._rpc("evm_mine", [])

    def snapshot(self) -> Any:
        return self._rpc("evm_snapshot", [])

    def revert_to(self, snapshot_id: Any) -> None:
        if not self._rpc("evm_revert", [snapshot_id]):
            raise ChainError(f"evm_revert({snapshot_id}) failed")


_ANVIL_KEYS: list[bytes] = []


def anvil_default_keys(n: int = 10) -> list[bytes]:
    """Private keys of anvil's default dev accounts (public test mnemonic, m/44'/60'/0'/0/i)."""
    if len(_ANVIL_KEYS) < n:
        Account.enable_unaudited_hdwallet_features()
        _ANVIL_KEYS[:] = [
            bytes(Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}").key)
            for i in range(n)
        ]
    return _ANVIL_KEYS[:n]


# -------------------------------------------------------------------------------- anvil
def anvil_executable() -> Path | None:
    """``node_modules/.bin/anvil`` of the repository, if installed: the native binary of the
    npm package ``@foundry-rs/anvil-linux-amd64`` (the Linux x64 build that
    ``@foundry-rs/anvil`` dispatches to), pinned in ``package.json`` (``npm ci``)."""
    path = REPO_ROOT / "node_modules" / ".bin" / "anvil"
    if path.exists() and os.access(path, os.X_OK):
        return path
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rpc_ready(url: str) -> bool:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=1) as resp:
            return "result" in json.loads(resp.read())
    except (OSError, ValueError, urllib.error.URLError):
        return False


@dataclass
class AnvilNode:
    """A running anvil process (its own process group); ``stop()`` ends it."""

    url: str
    port: int
    process: subprocess.Popen
    log_path: Path

    def stop(self, timeout: float = 10) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)  # the group anvil leads (its own session)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait(timeout)
        try:
            self.log_path.unlink()
        except FileNotFoundError:
            pass

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def chain(self, **kwargs) -> RpcChain:
        return RpcChain(self.url, **kwargs)

    def __enter__(self) -> "AnvilNode":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_anvil(
    *,
    hardfork: str = DEFAULT_HARDFORK,
    extra_args: Sequence[str] = (),
    startup_timeout: float = 30,
    attempts: int = 3,
) -> AnvilNode:
    """Start the npm-pinned anvil on 127.0.0.1 at a free port with ``--prune-history``; wait
    until it answers JSON-RPC. Raises ``ChainError`` if anvil is not installed (``npm ci``)."""
    exe = anvil_executable()
    if exe is None:
        raise ChainError("anvil is not installed: run `npm ci` at the repository root (Linux x64)")
    last_log = ""
    for _ in range(attempts):
        port = _free_port()
        fd, log_name = tempfile.mkstemp(prefix="clearline-anvil-", suffix=".log")
        log_path = Path(log_name)
        with os.fdopen(fd, "wb") as log:
            proc = subprocess.Popen(
                [str(exe), "--host", "127.0.0.1", "--port", str(port), "--prune-history",
                 "--hardfork", hardfork, *extra_args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=REPO_ROOT,
            )
        node = AnvilNode(f"http://127.0.0.1:{port}", port, proc, log_path)
        deadline = time.monotonic() + startup_timeout
        while time.monotonic() < deadline and proc.poll() is None:
            if _rpc_ready(node.url):
                return node
            time.sleep(0.05)
        last_log = node.log()
        node.stop()  # exited (port taken?) or too slow: try again on another port
    raise ChainError(f"anvil did not start: {last_log[-2000:]}")
