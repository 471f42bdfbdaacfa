import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { actionsRecord } from '../../../src/engine/collections/log/actions-digest.js';
import { validateTxRequest } from '../../../src/engine/transactions/tx-parse.js';

describe('log entry actions record', () => {
  const actions = validateTxRequest({
    actions: Array.from({ length: 50 }, (_, i) => ({
      op: 'put',
      value: { z: i, a: [1, { y: 'é', b: null }] },
      key: `k${i}`,
      collection: 'c',
    })),
  }).actions;
  const text = JSON.stringify(actions);

  it('keeps actions inline up to the bound, and their digest past it', () => {
    expect(actionsRecord(actions, text.length)).to.deep.equal({ actions });
    const digest = createHash('sha256').update(text).digest('base64url');
    expect(actionsRecord(actions, text.length - 1)).to.deep.equal({ actionsDigest: digest });
    expect(actionsRecord(undefined, 0)).to.deep.equal({
      actionsDigest: createHash('sha256').update('null').digest('base64url'),
    });
  });

  it('digests the validated actions, which an auditor rebuilds from the transaction line', () => {
    // The fields of each action in sorted order whatever order the line gave them, values as given.
    expect(
      text.startsWith('[{"collection":"c","key":"k0","op":"put","value":{"z":0,"a":[1,{"y":"é","b":null}]}}'),
    ).to.equal(true);
    const line = JSON.stringify({ actions: JSON.parse(text) as unknown });
    const again = validateTxRequest(JSON.parse(line)).actions;
    expect(actionsRecord(again, 10)).to.deep.equal(actionsRecord(actions, 10));
    // Any change in a value changes the digest.
    const changed = validateTxRequest({
      actions: [{ ...actions[0]!, key: 'k0!' }, ...actions.slice(1)],
    }).actions;
    expect(actionsRecord(changed, 10)).to.not.deep.equal(actionsRecord(actions, 10));
  });
});
