// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title A partner's ERC-20, paid beside SAPIEN in dual-reward campaigns.
/// @notice Name and symbol are the partner's; MINTER_ROLE holders fund the rewards.
contract PartnerToken is ERC20, AccessControl {
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");

    constructor(string memory name_, string memory symbol_, address admin) ERC20(name_, symbol_) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(MINTER_ROLE, admin);
    }

    /// Six decimals, as USDC: the platform's ledger keeps amounts in 64-bit base units, and a base unit of
    /// 10**-6 lets one balance hold 9.2 trillion tokens where 10**-18 would stop at 9.2.
    function decimals() public pure override returns (uint8) {
        return 6;
    }

    function mint(address to, uint256 amount) external onlyRole(MINTER_ROLE) {
        _mint(to, amount);
    }
}
