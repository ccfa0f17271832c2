// Compiles contracts/*.sol with the npm `solc` (0.8.30) and OpenZeppelin from node_modules into
// contracts/build/<Name>.json ({abi, bytecode}). The outputs are not kept in git: `make setup` rebuilds them.
"use strict";
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const here = __dirname;
const root = path.resolve(here, "..");
const outDir = path.join(here, "build");
const sources = {};
for (const name of fs.readdirSync(here).filter((file) => file.endsWith(".sol")).sort()) {
  sources[name] = { content: fs.readFileSync(path.join(here, name), "utf8") };
}

function findImports(importPath) {
  const candidate = path.join(root, "node_modules", importPath);
  if (fs.existsSync(candidate)) return { contents: fs.readFileSync(candidate, "utf8") };
  return { error: `not found: ${importPath}` };
}

const input = {
  language: "Solidity",
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "cancun",
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
const errors = (output.errors || []).filter((item) => item.severity === "error");
for (const item of output.errors || []) console.error(item.formattedMessage);
if (errors.length) process.exit(1);

fs.rmSync(outDir, { recursive: true, force: true });
fs.mkdirSync(outDir, { recursive: true });
for (const file of Object.keys(sources)) {
  for (const [name, contract] of Object.entries(output.contracts[file])) {
    if (!contract.evm.bytecode.object) continue; // interfaces have nothing to deploy
    const artifact = { contractName: name, compiler: solc.version(), abi: contract.abi, bytecode: "0x" + contract.evm.bytecode.object };
    fs.writeFileSync(path.join(outDir, `${name}.json`), JSON.stringify(artifact, null, 1) + "\n");
  }
}
console.log(`compiled ${Object.keys(sources).length} contracts into ${path.relative(root, outDir)}/`);
