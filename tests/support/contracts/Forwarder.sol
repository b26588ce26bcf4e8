// SPDX-License-Identifier: MIT
// Test only (tests/payments/eth/test_watcher.py): a contract that passes ETH on,
// as an exchange's hot wallet or a smart wallet does, so the deposit reaches the player's
// address by an internal call, not by a top-level transaction.
pragma solidity 0.8.37;

contract Forwarder {
    /// Passes msg.value on to `to`, split evenly when several are given.
    function forward(address payable[] calldata to) external payable {
        uint256 each = msg.value / to.length;
        for (uint256 i = 0; i < to.length; i++) {
            (bool ok, ) = to[i].call{value: each}("");
            require(ok, "forward failed");
        }
    }

    /// Passes msg.value on inside a call that then reverts (caught): nothing arrives, the
    /// transaction succeeds.
    function forwardReverted(address payable to) external payable {
        try this.forwardAndRevert{value: msg.value}(to) {} catch {}
    }

    function forwardAndRevert(address payable to) external payable {
        (bool ok, ) = to.call{value: msg.value}("");
        require(ok, "forward failed");
        revert("undone");
    }

    /// Passes msg.value on, then the whole transaction reverts.
    function forwardThenFail(address payable to) external payable {
        (bool ok, ) = to.call{value: msg.value}("");
        require(ok, "forward failed");
        revert("failed");
    }
}
