import { expect, test, type Page } from "@playwright/test";
import { open, session } from "./support";

async function graphql(page: Page, query: string, variables: object) {
  const answer = await (await page.request.post("/graphql", { data: { query, variables } })).json();
  expect(answer.errors).toBeUndefined();
  return answer.data;
}

test("what a fixed incident taught is searchable, with links to its incident and approval", async ({
  browser,
}) => {
  const admin = await session(browser, "admin");
  const alert = { name: "CacheEvictionStorm", service: "redis-cache", severity: "critical", fingerprint: "e2e-knowledge" };
  const fired = await admin.request.post("/api/v1/alerts/webhook", { data: alert });
  expect(fired.status()).toBe(202);
  const incident = (await fired.json()).incidents[0];
  const proposed = await graphql(
    admin,
    `mutation($i: ID!) { proposeAction(incidentId: $i, action:
      {kind: "restart_deployment", target: "redis-cache", rationale: "e2e: evictions"}) { id } }`,
    { i: incident },
  );
  const id = proposed.proposeAction.id;
  for (const signer of ["alice", "bob"]) {
    const page = await session(browser, signer);
    await graphql(page, `mutation($id: ID!) { approve(approvalId: $id) { status } }`, { id });
  }
  await expect
    .poll(async () => (await graphql(admin, `query($id: ID!) { approval(id: $id) { status } }`, { id })).approval.status)
    .toBe("EXECUTED");
  const resolved = await admin.request.post("/api/v1/alerts/webhook", { data: { ...alert, status: "resolved" } });
  expect(resolved.status()).toBe(202);

  // The execution's entry and the resolution's (written when the incident resolves).
  const rows = admin.getByTestId("knowledge-row");
  await expect(async () => {
    await admin.goto("/knowledge?q=CacheEvictionStorm");
    await expect(rows).toHaveCount(2, { timeout: 1000 });
  }).toPass({ timeout: 20_000 });
  await expect(admin.locator("body")).toHaveAttribute("data-hydrated", "true");
  await expect(rows.first()).toContainText("restart_deployment redis-cache");
  await expect(rows.first()).toContainText("WORKED");
  await expect(rows.first().getByRole("link", { name: `incident #${incident}` })).toHaveAttribute(
    "href",
    `/incidents/${incident}`,
  );
  await expect(rows.first().getByRole("link", { name: `approval #${id}` })).toHaveAttribute("href", `/approvals/${id}`);

  // The same pattern again: its incident page shows what the first one taught.
  const again = await admin.request.post("/api/v1/alerts/webhook", {
    data: { ...alert, fingerprint: "e2e-knowledge-2" },
  });
  const second = (await again.json()).incidents[0];
  expect(second).not.toBe(incident);
  await admin.goto(`/incidents/${second}`);
  const similar = admin.getByTestId("similar-incident");
  await expect(similar.first()).toContainText(`#${incident}`);
  await expect(similar.first()).toContainText("restart_deployment redis-cache: worked");

  await open(admin, "/knowledge");
  await admin.getByTestId("knowledge-query").fill("qzxv-wkjp-unmatched");
  await admin.getByRole("button", { name: "Search" }).click();
  await expect(admin.getByTestId("knowledge-empty")).toHaveText("Nothing learned matches.");
});
