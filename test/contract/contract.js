// Drives routr-go's management API with Routr's own published Node SDK
// (@routr/sdk, pinned in package.json), unchanged. Settings come from the
// environment: ROUTR_API (host:port), ROUTR_API_KEY, CONTRACT_DOMAIN (a
// fresh domain URI), ROUTR_API_CACERT (optional: use TLS),
// CONTRACT_TRUSTED=1 when the edge lets this address call without a key. On success it prints one JSON line with the refs it
// created, for the Go test to register and call with over SIP; on the
// first mismatch it prints the reason to stderr and exits 1.
"use strict"
const SDK = require("@routr/sdk").default
const assert = require("node:assert/strict")

// With ROUTR_API_CACERT the API is reached over TLS, verified with that CA.
const cacert = process.env.ROUTR_API_CACERT
const opts = {
  endpoint: process.env.ROUTR_API,
  insecure: !cacert,
  cacert,
  // Routr's SDK sends these as Basic credentials; routr-go takes the
  // password as the API key.
  username: "contract",
  password: process.env.ROUTR_API_KEY
}
const domainUri = process.env.CONTRACT_DOMAIN

const codes = { INVALID_ARGUMENT: 3, NOT_FOUND: 5, ALREADY_EXISTS: 6, FAILED_PRECONDITION: 9, UNAUTHENTICATED: 16 }

async function rejects(p, code, what) {
  try {
    await p
  } catch (e) {
    assert.equal(e.code, code, `${what}: code ${e.code} (${e.details}), want ${code}`)
    return e
  }
  assert.fail(`${what}: succeeded, want error code ${code}`)
}

async function main() {
  const acls = new SDK.Acls(opts)
  const creds = new SDK.Credentials(opts)
  const domains = new SDK.Domains(opts)
  const agents = new SDK.Agents(opts)
  const trunks = new SDK.Trunks(opts)
  const numbers = new SDK.Numbers(opts)
  const peers = new SDK.Peers(opts)

  // A bad key is refused.
  const bad = new SDK.Domains({ ...opts, password: "not-a-key" })
  await rejects(bad.listDomains({ pageSize: 10 }), codes.UNAUTHENTICATED, "list with a bad key")
  // No credentials at all, as Routr's rctl calls: refused, unless the
  // edge trusts this network (CONTRACT_TRUSTED=1 says it does).
  const anon = new SDK.Domains({ endpoint: opts.endpoint, insecure: opts.insecure, cacert })
  if (process.env.CONTRACT_TRUSTED === "1") {
    await anon.listDomains({ pageSize: 10 })
  } else {
    await rejects(anon.listDomains({ pageSize: 10 }), codes.UNAUTHENTICATED, "list without credentials")
  }

  const acl = await acls.createAcl({ name: "contract acl", allow: ["127.0.0.0/8"], deny: ["0.0.0.0/0"] })
  assert.ok(acl.ref, "acl ref")
  assert.deepEqual(acl.allow, ["127.0.0.0/8"])
  assert.ok(acl.createdAt > 1600000000, `createdAt in seconds: ${acl.createdAt}`)

  const c1 = await creds.createCredentials({ name: "contract alice", username: "alice", password: "alice-secret" })
  const c2 = await creds.createCredentials({ name: "contract bob", username: "bob", password: "bob-secret" })
  assert.equal(c1.username, "alice")

  const domain = await domains.createDomain({
    name: "contract domain",
    domainUri,
    accessControlListRef: acl.ref,
    extended: { team: "contract", level: 3 }
  })
  assert.equal(domain.domainUri, domainUri)
  assert.equal(domain.accessControlList.ref, acl.ref, "domain nests its ACL")
  assert.deepEqual(domain.extended, { team: "contract", level: 3 }, "extended round-trips")

  await rejects(domains.createDomain({ name: "dup", domainUri }), codes.INVALID_ARGUMENT, "a second domain with the same URI")
  const inv = await rejects(domains.createDomain({ name: "bad", domainUri: "not a host!" }), codes.INVALID_ARGUMENT, "an invalid domainUri")
  assert.match(inv.details, /domainUri/, "the error names the field")

  const alice = await agents.createAgent({ name: "Alice", username: "alice", domainRef: domain.ref, credentialsRef: c1.ref, enabled: true })
  const bob = await agents.createAgent({ name: "Bob", username: "bob", domainRef: domain.ref, credentialsRef: c2.ref, enabled: true })
  assert.equal(alice.domain.domainUri, domainUri, "agent nests its domain")
  assert.equal(alice.credentials.username, "alice", "agent nests its credentials")
  assert.equal(alice.privacy, "NONE")
  assert.equal(alice.enabled, true)

  const got = await agents.getAgent(alice.ref)
  assert.equal(got.username, "alice")
  await rejects(agents.getAgent("no-such-agent"), codes.NOT_FOUND, "get of a missing agent")

  // List, page by page.
  const seen = new Set()
  let pageToken = ""
  for (let i = 0; i < 100; i++) {
    const page = await agents.listAgents({ pageSize: 1, pageToken })
    page.items.forEach((a) => seen.add(a.ref))
    if (!page.nextPageToken || page.items.length === 0) break
    pageToken = page.nextPageToken
  }
  assert.ok(seen.has(alice.ref) && seen.has(bob.ref), "both agents listed")

  const upd = await agents.updateAgent({ ref: alice.ref, name: "Alice Updated", maxContacts: 3 })
  assert.equal(upd.name, "Alice Updated")
  assert.equal(upd.maxContacts, 3)
  assert.equal(upd.username, "alice", "update keeps fields it was not given")
  assert.ok(upd.updatedAt >= upd.createdAt)

  // The domain cannot go while agents use it.
  await rejects(domains.deleteDomain(domain.ref), codes.FAILED_PRECONDITION, "delete of a referenced domain")

  // A throwaway agent: create, delete, gone.
  const c3 = await creds.createCredentials({ name: "contract carol", username: "carol", password: "carol-secret" })
  const carol = await agents.createAgent({ name: "Carol", username: "carol", domainRef: domain.ref, credentialsRef: c3.ref })
  await agents.deleteAgent(carol.ref)
  await rejects(agents.getAgent(carol.ref), codes.NOT_FOUND, "get of a deleted agent")
  await creds.deleteCredentials(c3.ref)

  // Trunks, numbers and peers.
  const trunk = await trunks.createTrunk({
    name: "contract trunk",
    inboundUri: "trunk." + domainUri,
    sendRegister: false,
    uris: [{ host: "127.0.0.1", port: 5999, transport: "UDP", user: "t", weight: 10, priority: 10, enabled: true }]
  })
  assert.equal(trunk.uris[0].transport, "UDP")
  const number = await numbers.createNumber({
    name: "contract number",
    telUrl: "tel:+15550100199",
    aorLink: `sip:bob@${domainUri}`,
    city: "Columbus",
    country: "USA",
    countryIsoCode: "US",
    trunkRef: trunk.ref
  })
  assert.equal(number.trunk.ref, trunk.ref, "number nests its trunk")
  const num2 = await numbers.updateNumber({ ref: number.ref, name: "renamed number" })
  assert.equal(num2.telUrl, "tel:+15550100199")
  assert.equal(num2.name, "renamed number")
  await numbers.deleteNumber(number.ref)
  await trunks.deleteTrunk(trunk.ref)

  const pc = await creds.createCredentials({ name: "contract peer", username: "ms", password: "ms-secret" })
  const peer = await peers.createPeer({
    name: "contract peer",
    username: "ms-" + domainUri.split(".")[0],
    aor: "backend:contract",
    credentialsRef: pc.ref,
    balancingAlgorithm: "ROUND_ROBIN",
    withSessionAffinity: true
  })
  assert.equal(peer.balancingAlgorithm, "ROUND_ROBIN")
  assert.equal(peer.credentials.ref, pc.ref)
  await peers.deletePeer(peer.ref)
  await creds.deleteCredentials(pc.ref)

  const acl2 = await acls.updateAcl({ ref: acl.ref, name: "contract acl renamed" })
  assert.equal(acl2.name, "contract acl renamed")
  assert.deepEqual(acl2.deny, ["0.0.0.0/0"])

  process.stdout.write(JSON.stringify({ domain: domain.ref, acl: acl.ref, alice: alice.ref, bob: bob.ref, aliceCredentials: c1.ref }) + "\n")
}

main().catch((e) => {
  process.stderr.write(`contract: ${e.stack || e}\n${e.details ? "details: " + e.details + "\n" : ""}`)
  process.exit(1)
})
