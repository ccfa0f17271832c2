// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title SAPIEN, the reward token members earn for verified work.
/// @notice Only holders of MINTER_ROLE (the platform's treasury signer) create new tokens.
contract SapienToken is ERC20, AccessControl {
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");

    constructor(address admin) ERC20("Sapien", "SAPIEN") {
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
