// The real JavaScript SDK against a vault, signed in by DefaultAzureCredential (here: the managed-identity
// variables of `kvlab env`). Prints the vault's secret names and whether the value read back is the one written.
import { DefaultAzureCredential } from "@azure/identity";
import { SecretClient } from "@azure/keyvault-secrets";

const client = new SecretClient(process.argv[2], new DefaultAzureCredential());
const written = "plainly-fake-node-value"; // pragma: allowlist secret
await client.setSecret("from-node", written);
const names = [];
for await (const properties of client.listPropertiesOfSecrets()) names.push(properties.name);
const read = await client.getSecret("from-node");
console.log(JSON.stringify({ names: names.sort(), same: read.value === written }));
