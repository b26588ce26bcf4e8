// SPDX-License-Identifier: MIT
// HashHouse's batch payer: one transaction pays many withdrawals.
//
// - payEth: the caller sends exactly the sum of the amounts; each recipient gets its
//   amount; if one send fails the whole batch reverts (nobody is paid, the caller keeps
//   everything but the gas).
// - payToken: pulls each amount from the CALLER with SafeERC20.safeTransferFrom (works with
//   tokens whose transferFrom returns nothing, such as USDT), so it only ever moves the
//   caller's own tokens, up to the allowance the caller gave this contract.
// - Each payment emits Paid with the withdrawal's reference (the ledger's withdrawal id),
//   so a payment on chain can be matched to its request without the database.
//
// The contract holds no funds and has no owner, no storage and no upgrade path.
pragma solidity ^0.8.20;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

contract BatchPay {
    using SafeERC20 for IERC20;

    /// token is address(0) for ether.
    event Paid(uint256 indexed ref, address indexed token, address indexed to, uint256 amount);

    error LengthMismatch();
    error WrongValue(uint256 sent, uint256 total);
    error EthSendFailed(address to, uint256 ref);

    function payEth(address[] calldata to, uint256[] calldata amounts,
                    uint256[] calldata refs) external payable {
        uint256 n = to.length;
        if (amounts.length != n || refs.length != n) revert LengthMismatch();
        uint256 total = 0;
        for (uint256 i = 0; i < n; ++i) {
            total += amounts[i];
        }
        if (msg.value != total) revert WrongValue(msg.value, total);
        for (uint256 i = 0; i < n; ++i) {
            (bool ok, ) = to[i].call{value: amounts[i]}("");
            if (!ok) revert EthSendFailed(to[i], refs[i]);
            emit Paid(refs[i], address(0), to[i], amounts[i]);
        }
    }

    function payToken(IERC20 token, address[] calldata to, uint256[] calldata amounts,
                      uint256[] calldata refs) external {
        uint256 n = to.length;
        if (amounts.length != n || refs.length != n) revert LengthMismatch();
        for (uint256 i = 0; i < n; ++i) {
            token.safeTransferFrom(msg.sender, to[i], amounts[i]);
            emit Paid(refs[i], address(token), to[i], amounts[i]);
        }
    }
}
