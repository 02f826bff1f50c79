"""Triggers against the real server, each ending with the convergence check."""

from __future__ import annotations

from erpprov.core.actions import Op
from erpprov.plan.build import plan_target
from tests.helpers import apply_all, load_targets, plan_of

ERP = """\
      tables:
        - name: orders
          columns:
            - {name: id, type: serial, primary_key: true}
            - {name: status, type: text}
            - {name: updated_at, type: timestamptz}
      functions:
        - name: touch
          returns: trigger
          language: plpgsql
          body: "BEGIN NEW.updated_at = now(); RETURN NEW; END"
        - name: audit
          returns: trigger
          language: plpgsql
          body: "BEGIN RAISE NOTICE '% %', TG_ARGV[0], TG_OP; RETURN NULL; END"
      triggers:
        - {name: orders_touch, table: orders, timing: before, events: [update, insert], function: touch,
           when: "NEW.status IS DISTINCT FROM 'x'", update_of: [status], comment: keeps updated_at}
        - {name: orders_audit, table: orders, timing: after, events: [delete, truncate], for_each: statement,
           function: audit, arguments: ["it's gone"]}
        - {name: orders_check, table: orders, timing: after, events: [insert], function: audit, constraint: true,
           deferrable: initially deferred}
"""


def _targets(tmp_path, pg, body: str):  # type: ignore[no-untyped-def]
    return load_targets(tmp_path, pg, f"- name: p\n  hosts: all\n  databases:\n    - name: {pg.dbname}\n" + body)


def _converge(tmp_path, pg, body: str) -> None:
    targets = _targets(tmp_path, pg, body)
    apply_all(targets)  # fails unless the re-plan inside the lock is empty
    assert plan_of(targets) == []


def test_triggers_with_their_table_and_function_converge_and_change(tmp_path, pg, conn):
    _converge(tmp_path, pg, ERP.replace("when: \"NEW.status IS DISTINCT FROM 'x'\", ", ""))  # all new in one apply
    _converge(tmp_path, pg, ERP)  # a condition, compared as pg_get_triggerdef prints it
    conn.execute("INSERT INTO orders (status) VALUES ('new'); UPDATE orders SET status = 'paid'")
    assert conn.execute("SELECT updated_at IS NOT NULL FROM orders").fetchone()[0]

    disabled = ERP.replace("function: touch,", "function: touch, enabled: false,")
    [action] = plan_target(_targets(tmp_path, pg, disabled)[0]).actions
    assert action.op is Op.UPDATE and "DISABLE TRIGGER" in action.sql[0].text
    _converge(tmp_path, pg, disabled)
    assert conn.execute("SELECT tgenabled FROM pg_trigger WHERE tgname = 'orders_touch'").fetchone()[0] == "D"

    changed = disabled.replace("timing: after, events: [insert]", "timing: after, events: [insert, update]")
    changed = changed.replace("[\"it's gone\"]", "[\"it's gone\", second]")
    actions = plan_target(_targets(tmp_path, pg, changed)[0]).actions
    assert sorted(a.address.parts[-1] for a in actions) == ["orders_audit", "orders_check"]
    _converge(tmp_path, pg, changed)


def test_a_trigger_on_a_partitioned_table_converges(tmp_path, pg, conn):
    """PostgreSQL clones a partitioned table's row trigger onto each partition, under the same name:
    those clones are the parent trigger's, not objects of their own."""
    body = """\
      tables:
        - name: events
          columns:
            - {name: id, type: bigint, nullable: false}
            - {name: at, type: date, nullable: false}
            - {name: stamped, type: timestamptz}
          partition_by: {method: range, columns: [at]}
          partitions:
            - {name: events_2026, from: ["'2026-01-01'"], to: ["'2027-01-01'"]}
            - {name: events_rest, default: true}
      functions:
        - name: stamp
          returns: trigger
          language: plpgsql
          body: "BEGIN NEW.stamped = now(); RETURN NEW; END"
      triggers:
        - {name: events_stamp, table: events, timing: before, events: [insert], function: stamp}
"""
    _converge(tmp_path, pg, body)
    conn.execute("INSERT INTO events (id, at) VALUES (1, '2026-05-01'), (2, '2030-01-01')")
    assert conn.execute("SELECT count(*) FROM events WHERE stamped IS NOT NULL").fetchone()[0] == 2
    _converge(tmp_path, pg, body.replace("events: [insert]", "events: [insert, update]"))


def test_a_renamed_trigger_keeps_its_comment_and_state_and_still_fires(tmp_path, pg, conn):
    disabled = ERP.replace("deferrable: initially deferred}", "deferrable: initially deferred, enabled: false}")
    _converge(tmp_path, pg, disabled)
    renamed = (disabled.replace("{name: orders_touch,", "{name: orders_updated_at, renamed_from: orders_touch,")
               .replace("{name: orders_check,", "{name: orders_checked, renamed_from: orders_check,"))
    plan = plan_target(_targets(tmp_path, pg, renamed)[0])
    assert sorted((a.sql[0].text, a.op, str(a.before), str(a.after)) for a in plan.actions) == [
        ('ALTER TRIGGER "orders_check" ON "public"."orders" RENAME TO "orders_checked"', Op.UPDATE,
         "{'name': 'orders_check'}", "{'name': 'orders_checked'}"),
        ('ALTER TRIGGER "orders_touch" ON "public"."orders" RENAME TO "orders_updated_at"', Op.UPDATE,
         "{'name': 'orders_touch'}", "{'name': 'orders_updated_at'}")]
    assert not [a for a in plan.unmanaged if 'orders_touch' in str(a)]  # the old name is the declared one
    _converge(tmp_path, pg, renamed)
    conn.execute("INSERT INTO orders (status) VALUES ('new')")
    assert conn.execute("SELECT updated_at IS NOT NULL FROM orders").fetchone()[0]
    assert conn.execute("SELECT obj_description(oid, 'pg_trigger') FROM pg_trigger WHERE tgname = 'orders_updated_at'"
                        ).fetchone()[0] == "keeps updated_at"
    assert conn.execute("SELECT tgenabled FROM pg_trigger WHERE tgname = 'orders_checked'").fetchone()[0] == "D"
    _converge(tmp_path, pg, renamed)  # done: the old name is gone, the rename is nothing


def test_triggers_go_along_with_their_renamed_table(tmp_path, pg, conn):
    _converge(tmp_path, pg, ERP)
    _converge(tmp_path, pg, ERP.replace("- name: orders\n", "- name: sales\n          renamed_from: orders\n")
              .replace("table: orders", "table: sales"))
    assert conn.execute("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'sales'::regclass AND NOT tgisinternal"
                        ).fetchone()[0] == 3
