// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @dev SapienToken and PartnerToken: whoever holds their MINTER_ROLE mints.
interface IMintableToken {
    function mint(address to, uint256 amount) external;
}

/// @title Pays many members in one transaction: from the tokens this contract holds (`pay`), or by
/// minting them (`payMinting`, for tokens that granted this contract their MINTER_ROLE).
/// @notice Each batch id pays at most once, whichever function pays it: a replayed or retried batch
/// reverts, so a settlement that crashed after broadcast can never pay twice.
contract SapienPayout is AccessControl {
    using SafeERC20 for IERC20;

    bytes32 public constant PAYER_ROLE = keccak256("PAYER_ROLE");

    IERC20 public immutable token;
    mapping(bytes32 => bool) public paid;

    error BatchAlreadyPaid(bytes32 batchId);
    error LengthMismatch();

    event BatchPaid(bytes32 indexed batchId, uint256 recipients, uint256 total);
    event BatchMinted(bytes32 indexed batchId, address indexed token, uint256 recipients, uint256 total);

    constructor(IERC20 token_, address admin) {
        token = token_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PAYER_ROLE, admin);
    }

    function _claim(bytes32 batchId, uint256 recipients, uint256 amounts) private {
        if (recipients != amounts) revert LengthMismatch();
        if (paid[batchId]) revert BatchAlreadyPaid(batchId);
        paid[batchId] = true;
    }

    function pay(bytes32 batchId, address[] calldata recipients, uint256[] calldata amounts) external onlyRole(PAYER_ROLE) {
        _claim(batchId, recipients.length, amounts.length);
        uint256 total;
        for (uint256 i; i < recipients.length; ++i) {
            token.safeTransfer(recipients[i], amounts[i]);
            total += amounts[i];
        }
        emit BatchPaid(batchId, recipients.length, total);
    }

    function payMinting(bytes32 batchId, IMintableToken mintable, address[] calldata recipients, uint256[] calldata amounts)
        external
        onlyRole(PAYER_ROLE)
    {
        _claim(batchId, recipients.length, amounts.length);
        uint256 total;
        for (uint256 i; i < recipients.length; ++i) {
            mintable.mint(recipients[i], amounts[i]);
            total += amounts[i];
        }
        emit BatchMinted(batchId, address(mintable), recipients.length, total);
    }
}
