"""Generate a realistic, entirely fictitious customer table for the churn example.

Each row is one monthly account snapshot of one customer; a customer has 1 to 12
snapshots. The label ``churned`` says whether the customer cancelled within 90 days
of the snapshot. It is drawn from a logistic model of the snapshot's features
(contract, support calls, late payments, tenure, charges, payment method), so the
data carries a real but noisy signal, as churn data does.

Customers are split into a training file and a test file by person (a person's
rows are all on one side), so test accuracy measures people the model never saw.

    python examples/customer_churn/make_data.py            # writes examples/customer_churn/data/
    python examples/customer_churn/make_data.py --customers 200 --out /tmp/churn

Seeded: the same seed gives the same files (for a given Faker version).
"""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from faker import Faker

PLANS = {"basic": 35.0, "standard": 60.0, "premium": 95.0}
CONTRACTS = ["month-to-month", "one-year", "two-year"]
PAYMENTS = ["credit card", "bank transfer", "electronic check", "mailed check"]
SNAPSHOT_END = date(2024, 12, 1)


def make_customers(n_customers: int, seed: int) -> pd.DataFrame:
    fake = Faker("en_US")
    Faker.seed(seed)
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n_customers):
        customer_id = f"C{c:05d}"
        born = fake.date_of_birth(minimum_age=18, maximum_age=85)
        signup = fake.date_between(start_date="-6y", end_date="-13M")
        plan = rng.choice(list(PLANS), p=[0.45, 0.35, 0.20])
        contract = rng.choice(CONTRACTS, p=[0.55, 0.25, 0.20])
        payment = rng.choice(PAYMENTS, p=[0.35, 0.25, 0.28, 0.12])
        unhappiness = rng.gamma(2.0, 0.5)  # a latent trait: some customers call support more
        state = fake.state_abbr(include_territories=False)
        person = {"customer_id": customer_id, "name": fake.name(), "email": fake.email(),
                  "state": state, "plan": plan, "contract": contract, "payment_method": payment}
        n_months = int(rng.integers(1, 13))
        for m in range(n_months):
            month = date(SNAPSHOT_END.year, 12 - n_months + 1 + m, 1)
            tenure = (month.year - signup.year) * 12 + month.month - signup.month
            age = month.year - born.year - ((month.month, 1) < (born.month, born.day))
            charges = PLANS[plan] * rng.uniform(0.9, 1.25) + rng.normal(0, 3)
            support_calls = int(rng.poisson(unhappiness))
            late = int(rng.binomial(2, 0.08 if payment != "electronic check" else 0.2))
            data_gb = float(rng.gamma(3.0, {"basic": 2.0, "standard": 5.0, "premium": 9.0}[plan]))
            logit = (-2.6 + 2.0 * (contract == "month-to-month") - 1.2 * (contract == "two-year")
                     + 0.6 * support_calls + 1.0 * late - 0.03 * tenure
                     + 0.02 * (charges - 60) + 0.5 * (payment == "electronic check") - 0.012 * (age - 45))
            churned = rng.random() < 1 / (1 + np.exp(-logit))
            rows.append({
                "record_id": f"{customer_id}-{month:%Y-%m}", **person, "month": f"{month:%Y-%m}",
                "age": age, "tenure_months": tenure, "monthly_charges": round(charges, 2),
                "data_gb": round(data_gb, 2), "support_calls": support_calls, "late_payments": late,
                "churned": "yes" if churned else "no",
            })
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--test-share", type=float, default=0.2, help="share of customers held out")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "data")
    args = parser.parse_args()

    table = make_customers(args.customers, args.seed)
    people = table["customer_id"].unique()
    rng = np.random.default_rng(args.seed)
    test_people = set(rng.choice(people, size=int(round(len(people) * args.test_share)), replace=False))
    is_test = table["customer_id"].isin(test_people)
    args.out.mkdir(parents=True, exist_ok=True)
    table[~is_test].to_csv(args.out / "customers_train.csv", index=False)
    table[is_test].to_csv(args.out / "customers_test.csv", index=False)

    train = table[~is_test]
    counts = train["customer_id"].value_counts()
    chosen = counts[counts == counts.max()].index.sort_values()[0]
    print(f"wrote {args.out}/customers_train.csv ({len(train)} rows, {train['customer_id'].nunique()} customers) "
          f"and customers_test.csv ({int(is_test.sum())} rows, {len(test_people)} customers)")
    print(f"churn rate: {(table['churned'] == 'yes').mean():.3f}")
    print(f"a customer with {counts.max()} rows to forget: {chosen} ({train.loc[train.customer_id == chosen, 'name'].iloc[0]})")
    print(f"  obliviate bench --config examples/customer_churn/run.yaml --forget subjects:{chosen}")


if __name__ == "__main__":
    main()
