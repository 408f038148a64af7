/**
 * The people of the approval tests and the demo, each with the identities APPROVERS binds them to: a
 * Slack user id (Slack's `U` + 8-10 upper-case characters) and an Entra ID object id + sign-in e-mail.
 * `approversSetting()` writes them in APPROVERS' compact form; `cookieOf()` signs someone in on the
 * embedded host (its local stand-in for App Service Authentication, local/local-auth.ts).
 */
import type { Approver } from '../../shared/domain/identity';
import { localSessionCookie, localSignInUrl } from '../../local/local-auth';

export interface Person {
  id: string;
  name: string;
  slack: string;
  oid: string;
  email: string;
}

const person = (id: string, name: string, slack: string, n: number): Person => ({
  id,
  name,
  slack,
  oid: `0000000${n}-aaaa-4bbb-8ccc-${String(n).padStart(12, '0')}`,
  email: `${id}@example.com`,
});

export const PEOPLE = {
  alice: person('alice', 'Alice Martin', 'U01ALICE00', 1),
  bob: person('bob', 'Bob Dupont', 'U02BOB0000', 2),
  carol: person('carol', 'Carol Nguyen', 'U03CAROL00', 3),
  mallory: person('mallory', 'Mallory (not an approver)', 'U09MALLORY', 9),
} as const;
export type Who = keyof typeof PEOPLE;

/** APPROVERS for these people: `alice:slack=U…:entra=<oid>:name=…` entries. */
export function approversSetting(...ids: Who[]): string {
  return ids
    .map((i) => `${PEOPLE[i].id}:slack=${PEOPLE[i].slack}:entra=${PEOPLE[i].oid}:name=${PEOPLE[i].name}`)
    .join(', ');
}

export function approverList(...ids: Who[]): Approver[] {
  return ids.map((i) => ({
    id: PEOPLE[i].id,
    name: PEOPLE[i].name,
    slack: PEOPLE[i].slack,
    entra: PEOPLE[i].oid,
  }));
}

/** The Cookie header that makes a request come from `who` signed in (embedded host). */
export function cookieOf(masterKey: string, who: Who): string {
  const p = PEOPLE[who];
  return localSessionCookie(masterKey, { oid: p.oid, name: p.name, email: p.email });
}

/**
 * For the fake Slack's outbox page (`FakeSlack.decorate`): a link to this host sent privately to one of
 * PEOPLE becomes "sign in as them, then open it", so a person trying the demo can click it and land on
 * the page as its approver. Links to anywhere else, and links in the channel, stay as they are.
 */
export function outboxSignIn(baseUrl: string, masterKey: string): (userId: string, url: string) => string {
  return (userId, url) => {
    const who = (Object.keys(PEOPLE) as Who[]).find((k) => PEOPLE[k].slack === userId);
    return who && url.startsWith(baseUrl) ? signInUrl(baseUrl, masterKey, who, new URL(url).pathname) : url;
  };
}

export function signInUrl(baseUrl: string, masterKey: string, who: Who, redirect: string): string {
  const p = PEOPLE[who];
  return localSignInUrl(baseUrl, masterKey, { oid: p.oid, name: p.name, email: p.email }, redirect);
}
