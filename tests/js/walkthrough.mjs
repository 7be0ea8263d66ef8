// The real JavaScript SDK through a secret's whole life in a vault, signed in by DefaultAzureCredential (the
// managed-identity variables of `kvlab env`): two versions, reads by version, lists, delete + recover,
// backup + purge + restore, then a second identity (a user-assigned one, by its client id) that is refused a write.
//
//   node walkthrough.mjs VAULT_URL READER_CLIENT_ID
//
// Prints one JSON object of facts (names, versions, counts, booleans, the refusal's status and codes) and never
// a secret value. If a step fails, the object says which step and how (status, code, message) and the exit code is 1.
import { DefaultAzureCredential } from "@azure/identity";
import { SecretClient } from "@azure/keyvault-secrets";

const [url, readerClientId] = process.argv.slice(2);
const NAME = "walkthrough";
const FIRST = "plainly-fake-first-value"; // pragma: allowlist secret
const SECOND = "plainly-fake-second-value"; // pragma: allowlist secret
const REFUSED = "plainly-fake-refused-value"; // pragma: allowlist secret
const poll = { intervalInMs: 50 }; // the pollers' default waits 2 s between polls
const facts = {};
let step = "start";

const all = async (pages) => {
  const items = [];
  for await (const item of pages) items.push(item);
  return items;
};
// What a refused call said: status and codes only (a RestError's request would carry the body sent).
const refusal = (err) => ({
  statusCode: err.statusCode ?? null,
  code: err.code ?? null,
  innerCode: err.details?.error?.innerError?.code ?? null, // the body's error.innererror, as the SDK names it
  message: String(err.message ?? "").slice(0, 300),
});
const statusOf = async (call) => {
  try {
    await call();
    return { statusCode: 200, code: null };
  } catch (err) {
    if (err.statusCode === undefined) throw err;
    return { statusCode: err.statusCode, code: err.code ?? null };
  }
};
const versionsOf = async (client) =>
  (await all(client.listPropertiesOfSecretVersions(NAME))).map((p) => p.version).sort();

try {
  const client = new SecretClient(url, new DefaultAzureCredential());

  step = "setSecret";
  const first = await client.setSecret(NAME, FIRST);
  const second = await client.setSecret(NAME, SECOND);
  facts.written = [first.properties.version, second.properties.version];

  step = "getSecret";
  const latest = await client.getSecret(NAME);
  const older = await client.getSecret(NAME, { version: first.properties.version });
  facts.latest = { version: latest.properties.version, isSecondValue: latest.value === SECOND };
  facts.older = { version: older.properties.version, isFirstValue: older.value === FIRST };

  step = "listPropertiesOfSecretVersions";
  facts.versions = await versionsOf(client);

  step = "listPropertiesOfSecrets";
  facts.names = (await all(client.listPropertiesOfSecrets())).map((p) => p.name).sort();

  step = "beginDeleteSecret";
  const deleted = await (await client.beginDeleteSecret(NAME, poll)).pollUntilDone();
  facts.deleted = { name: deleted.name, recoveryId: Boolean(deleted.recoveryId),
                    scheduledPurgeDate: deleted.scheduledPurgeDate instanceof Date };

  step = "listDeletedSecrets";
  facts.deletedNames = (await all(client.listDeletedSecrets())).map((d) => d.name).sort();
  facts.namesWhileDeleted = (await all(client.listPropertiesOfSecrets())).map((p) => p.name).sort();

  step = "getDeletedSecret";
  facts.getDeletedSecret = (await client.getDeletedSecret(NAME)).name;
  facts.getWhileDeleted = await statusOf(() => client.getSecret(NAME));

  step = "beginRecoverDeletedSecret";
  const recovered = await (await client.beginRecoverDeletedSecret(NAME, poll)).pollUntilDone();
  const afterRecovery = await client.getSecret(NAME);
  facts.recovered = { name: recovered.name, version: afterRecovery.properties.version,
                      isSecondValue: afterRecovery.value === SECOND, versions: await versionsOf(client) };

  step = "backupSecret";
  const backup = await client.backupSecret(NAME);
  facts.backup = { bytes: backup?.length ?? 0,
                   showsAValue: [FIRST, SECOND].some((v) => Buffer.from(backup ?? []).includes(v)) };

  step = "delete and purgeDeletedSecret";
  await (await client.beginDeleteSecret(NAME, poll)).pollUntilDone();
  await client.purgeDeletedSecret(NAME);
  facts.afterPurge = { getDeletedSecret: await statusOf(() => client.getDeletedSecret(NAME)),
                       getSecret: await statusOf(() => client.getSecret(NAME)) };

  step = "restoreSecretBackup";
  const restored = await client.restoreSecretBackup(backup);
  const afterRestore = await client.getSecret(NAME);
  const olderAfterRestore = await client.getSecret(NAME, { version: first.properties.version });
  facts.restored = { name: restored.name, version: afterRestore.properties.version,
                     isSecondValue: afterRestore.value === SECOND, olderIsFirstValue: olderAfterRestore.value === FIRST,
                     versions: await versionsOf(client) };

  step = "a second identity";
  const reader = new SecretClient(url, new DefaultAzureCredential({ managedIdentityClientId: readerClientId }));
  facts.readerReads = (await reader.getSecret(NAME)).value === SECOND;
  step = "a second identity's write";
  try {
    await reader.setSecret(NAME, REFUSED);
    facts.refused = null;
  } catch (err) {
    if (err.statusCode === undefined) throw err;
    facts.refused = refusal(err);
  }
  facts.versionsAfterRefusal = await versionsOf(client);
  step = "done";
} catch (err) {
  facts.failed = { step, ...refusal(err), name: err.name ?? null };
  process.exitCode = 1;
}
console.log(JSON.stringify(facts));
