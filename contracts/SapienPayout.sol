// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title Pays many members in one transaction from the tokens this contract holds.
/// @notice Each batch id pays at most once: a replayed or retried batch reverts, so a settlement
/// that crashed after broadcast can never pay twice.
contract SapienPayout is AccessControl {
    using SafeERC20 for IERC20;

    bytes32 public constant PAYER_ROLE = keccak256("PAYER_ROLE");

    IERC20 public immutable token;
    mapping(bytes32 => bool) public paid;

    error BatchAlreadyPaid(bytes32 batchId);
    error LengthMismatch();

    event BatchPaid(bytes32 indexed batchId, uint256 recipients, uint256 total);

    constructor(IERC20 token_, address admin) {
        token = token_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PAYER_ROLE, admin);
    }

    function pay(bytes32 batchId, address[] calldata recipients, uint256[] calldata amounts) external onlyRole(PAYER_ROLE) {
        if (recipients.length != amounts.length) revert LengthMismatch();
        if (paid[batchId]) revert BatchAlreadyPaid(batchId);
        paid[batchId] = true;
        uint256 total;
        for (uint256 i; i < recipients.length; ++i) {
            token.safeTransfer(recipients[i], amounts[i]);
            total += amounts[i];
        }
        emit BatchPaid(batchId, recipients.length, total);
    }
}
