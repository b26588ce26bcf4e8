// SPDX-License-Identifier: MIT
// HashHouse's batch payer: one transaction pays many withdrawals, and one recipient that
// refuses its payment never stops the others.
//
// - payEth: the caller sends exactly the sum of the amounts. Each recipient is called with
//   its amount and at most ETH_GAS_STIPEND gas (enough for a Safe or another smart wallet
//   that logs what it receives; bounded, so a recipient cannot burn the batch's gas), its
//   return data is never copied. A recipient that reverts gets Refused instead of Paid;
//   the refused sum goes back to the caller at the end.
// - payToken: pulls each amount from the CALLER with SafeERC20.trySafeTransferFrom (works
//   with tokens whose transferFrom returns nothing, such as USDT), so it only ever moves
//   the caller's own tokens, up to the allowance the caller gave this contract. A transfer
//   the token refuses (a blacklisted recipient) gets Refused instead of Paid. The caller's
//   balance and allowance must cover the whole batch first (NotFunded), so a refusal is
//   always the recipient's.
// - Each payment emits Paid (or Refused) with the withdrawal's reference (the ledger's
//   withdrawal id), so a payment on chain can be matched to its request without the
//   database.
// - The whole call reverts when the gas left could not give the next recipient its full
//   allowance (GasTooLow: a recipient is never refused for lack of our gas) and when
//   nobody would be paid (NothingPaid: so a paused token, or a batch of refusing
//   addresses, shows at the gas estimate and sends nothing).
//
// The contract holds no funds and has no owner, no storage and no upgrade path.
pragma solidity ^0.8.20;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

contract BatchPay {
    using SafeERC20 for IERC20;

    /// Gas given to each ether recipient (a Safe 1.4.1 receive needs about 7,000).
    uint256 public constant ETH_GAS_STIPEND = 50_000;
    /// Gas the ether call costs the caller beyond the stipend (value 9,000, new account
    /// 25,000, cold address 2,600, the 1/64 kept back) and its log.
    uint256 private constant ETH_CALL_RESERVE = 45_000;
    /// Gas left before each token transfer (USDT/USDC need under 70,000).
    uint256 private constant TOKEN_CALL_GAS = 120_000;

    /// token is address(0) for ether.
    event Paid(uint256 indexed ref, address indexed token, address indexed to, uint256 amount);
    /// The recipient (or the token, for it) refused the payment; nothing moved.
    event Refused(uint256 indexed ref, address indexed token, address indexed to,
                  uint256 amount);

    error LengthMismatch();
    error WrongValue(uint256 sent, uint256 total);
    error NotFunded(uint256 total);
    error GasTooLow(uint256 index);
    error NothingPaid();
    error RefundFailed();

    function payEth(address[] calldata to, uint256[] calldata amounts,
                    uint256[] calldata refs) external payable {
        uint256 n = to.length;
        if (amounts.length != n || refs.length != n) revert LengthMismatch();
        uint256 total = 0;
        for (uint256 i = 0; i < n; ++i) {
            total += amounts[i];
        }
        if (msg.value != total) revert WrongValue(msg.value, total);
        uint256 refused = 0;
        uint256 paid = 0;
        uint256 stipend = ETH_GAS_STIPEND;
        for (uint256 i = 0; i < n; ++i) {
            if (gasleft() < ETH_GAS_STIPEND + ETH_CALL_RESERVE) revert GasTooLow(i);
            address recipient = to[i];
            uint256 amount = amounts[i];
            bool ok;
            assembly ("memory-safe") {
                ok := call(stipend, recipient, amount, 0, 0, 0, 0)
            }
            if (ok) {
                ++paid;
                emit Paid(refs[i], address(0), recipient, amount);
            } else {
                refused += amount;
                emit Refused(refs[i], address(0), recipient, amount);
            }
        }
        if (paid == 0) revert NothingPaid();
        if (refused != 0) {
            address payer = msg.sender;
            bool back;
            assembly ("memory-safe") {
                back := call(gas(), payer, refused, 0, 0, 0, 0)
            }
            if (!back) revert RefundFailed();
        }
    }

    function payToken(IERC20 token, address[] calldata to, uint256[] calldata amounts,
                      uint256[] calldata refs) external {
        uint256 n = to.length;
        if (amounts.length != n || refs.length != n) revert LengthMismatch();
        uint256 total = 0;
        for (uint256 i = 0; i < n; ++i) {
            total += amounts[i];
        }
        if (token.balanceOf(msg.sender) < total ||
                token.allowance(msg.sender, address(this)) < total) revert NotFunded(total);
        uint256 paid = 0;
        for (uint256 i = 0; i < n; ++i) {
            if (gasleft() < TOKEN_CALL_GAS) revert GasTooLow(i);
            if (token.trySafeTransferFrom(msg.sender, to[i], amounts[i])) {
                ++paid;
                emit Paid(refs[i], address(token), to[i], amounts[i]);
            } else {
                emit Refused(refs[i], address(token), to[i], amounts[i]);
            }
        }
        if (paid == 0) revert NothingPaid();
    }
}
